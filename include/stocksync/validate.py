"""Validate the raw WMS counts with a Great Expectations suite (shared/DESIGN.md §3.5).

The suite is code: `build_suite()` lists every expectation. Validation reads the raw
staging table into pandas (text, as received), derives numeric columns, runs the suite,
stores one row per check in `stocksync.dq_results`, and raises `ValidationFailed` naming
every failed check when the counts must not be loaded.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from include.stocksync.db import query
from include.stocksync.settings import Settings

if TYPE_CHECKING:  # heavy imports stay inside the functions that need them
    import pandas as pd

log = logging.getLogger(__name__)

EXPECTED_COLUMNS = ("sku", "on_hand", "non_usable", "allocated", "available", "seq")
QUANTITY_COLUMNS = ("on_hand", "non_usable", "allocated", "available")
INTEGER_PATTERN = r"^-?[0-9]+$"
SEQ_MAX = 2**62


class ValidationFailed(RuntimeError):
    """The WMS counts failed validation; nothing was written to the shop."""

    def __init__(self, failed: list[CheckResult]):
        self.failed = failed
        lines = "; ".join(f"{c.check}: {c.observed}" for c in failed)
        super().__init__(f"WMS counts failed validation, nothing was written: {lines}")


@dataclass
class CheckResult:
    check: str
    success: bool
    observed: str
    examples: list[Any] = field(default_factory=list)
    policy: str = "fail"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_raw_frame(conn: psycopg.Connection, raw_table: str) -> pd.DataFrame:
    """The raw staging table as a DataFrame of strings (NULL -> NA, '' stays '')."""
    import pandas as pd

    buffer = io.BytesIO()
    with conn.cursor().copy(query("stocksync/copy_raw_counts_out", raw=raw_table)) as copy:
        for chunk in copy:
            buffer.write(chunk)
    conn.commit()
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=str, keep_default_na=False, na_values=["\\N"])


def prepare_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """The frame GX validates: the columns that arrived, plus `<col>_num` numeric twins."""
    import pandas as pd

    frame = pd.DataFrame({"sku": raw["sku"]})
    missing = set(_split_keys(raw["missing_keys"]))
    for column in EXPECTED_COLUMNS[1:]:
        if column not in missing or raw[column].notna().any():
            frame[column] = raw[column]
        frame[f"{column}_num"] = pd.to_numeric(raw[column], errors="coerce")
    for extra in sorted(set(_split_keys(raw["extra_keys"]))):
        frame[extra] = pd.NA
    return frame


def _split_keys(column: pd.Series) -> list[str]:
    return [key for value in column.dropna().unique() for key in str(value).split(",") if key]


def build_suite(settings: Settings, row_count: int) -> list[Any]:
    """The expectations for one WMS snapshot, as Great Expectations objects."""
    import great_expectations.expectations as gxe

    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*EXPECTED_COLUMNS, *(f"{c}_num" for c in EXPECTED_COLUMNS[1:])], exact_match=True),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToNotBeNull(column="sku"),
        gxe.ExpectColumnValuesToBeUnique(column="sku"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="sku", min_value=1, max_value=64),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=settings.sku_pattern),
    ]
    for column in EXPECTED_COLUMNS[1:]:
        upper = SEQ_MAX if column == "seq" else settings.max_quantity
        lower = 1 if column == "seq" else 0
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column),
            gxe.ExpectColumnValuesToMatchRegex(column=column, regex=INTEGER_PATTERN),
            gxe.ExpectColumnValuesToBeBetween(column=f"{column}_num", min_value=lower, max_value=upper),
        ]
    return expectations


def _check_name(config: Any) -> str:
    kwargs = config.kwargs
    column = kwargs.get("column")
    name = config.type
    if column:
        name += f"[{column}]"
    return name


def run_suite(frame: pd.DataFrame, settings: Settings) -> list[CheckResult]:
    """Validate `frame` with the GX suite; one CheckResult per expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("wms").add_dataframe_asset("wms_counts")
    batch_definition = asset.add_batch_definition_whole_dataframe("snapshot")
    suite = context.suites.add(gx.ExpectationSuite(name="wms_counts"))
    for expectation in build_suite(settings, len(frame)):
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="wms_counts", data=batch_definition, suite=suite))
    result = validation.run(batch_parameters={"dataframe": frame},
                            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    checks = []
    for item in result.results:
        details = item.result or {}
        if "observed_value" in details:
            observed = f"observed {details['observed_value']!r}"
        elif "unexpected_count" in details:
            total = details.get("element_count", len(frame))
            observed = f"{details.get('unexpected_count', 0)} of {total} rows unexpected"
        else:
            observed = str(item.exception_info.get("exception_message") if item.exception_info else "")
        examples = [_json_safe(v) for v in details.get("partial_unexpected_list", [])[:5]]
        checks.append(CheckResult(_check_name(item.expectation_config), bool(item.success), observed, examples))
    return checks


def _json_safe(value: Any) -> Any:
    try:
        orjson.dumps(value)
        return value
    except TypeError:
        return str(value)


def record_checks(conn: psycopg.Connection, run_id: str, checks: list[CheckResult]) -> None:
    with conn.cursor() as cur:
        cur.execute(query("stocksync/delete_dq_results"), {"run_id": run_id})
        cur.executemany(query("stocksync/insert_dq_result"), [
            {"run_id": run_id, "check_name": c.check, "success": c.success, "policy": c.policy,
             "observed": c.observed[:2000], "examples": orjson.dumps(c.examples).decode()}
            for c in checks
        ])
    conn.commit()


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    rows: int
    valid: int
    failed_checks: list[str]
    seconds: float


def validate_counts(conn: psycopg.Connection, run_id: str, raw_table: str, settings: Settings) -> ValidationResult:
    """Run the suite on the run's raw counts, record every check, raise if any check fails."""
    started = time.perf_counter()
    raw = load_raw_frame(conn, raw_table)
    frame = prepare_frame(raw)
    checks = run_suite(frame, settings)
    record_checks(conn, run_id, checks)
    failed = [c for c in checks if not c.success]
    seconds = time.perf_counter() - started
    log.info("validated %d rows with %d checks in %.2fs: %d failed", len(frame), len(checks), seconds, len(failed))
    if failed:
        raise ValidationFailed(failed)
    return ValidationResult(True, len(frame), len(frame), [], seconds)
