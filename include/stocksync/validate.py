"""Validate the raw WMS counts with a Great Expectations suite (shared/DESIGN.md §3.5).

The suite is code: `build_suite()` lists every expectation, each tagged with the check it
implements (`meta.check`), whose policy comes from the config (`dq_policies`):

- `fail`: any offending row stops the run; nothing is written;
- `quarantine`: offending rows are kept out of the load and listed in the report, as long
  as they stay under the check's limit (`unknown_sku_max_share`, `quarantine_max_share`);
  above it the run fails too.

Table-level checks (columns, row count against the catalog) always fail the run.
Validation reads the raw staging table into pandas (text, as received), derives numeric
columns, runs the suite through a GX file context under the reports folder, stores one row
per check in `stocksync.dq_results` and the quarantined rows in `stocksync.quarantine`, and
raises `ValidationFailed` naming every failed check. No Data Docs are built: GX's page shows WMS
text unescaped and loads scripts from CDNs, and the run report renders every check from
`stocksync.dq_results` instead.
"""

from __future__ import annotations

import fcntl
import io
import logging
import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import psycopg

from include.stocksync.contract import FIELD_NAMES, INTEGER_FIELDS, ITEM_FIELDS, raw_columns
from include.stocksync.db import query, run_key
from include.stocksync.errors import PermanentError
from include.stocksync.settings import Settings

if TYPE_CHECKING:  # heavy imports stay inside the functions that need them
    import pandas as pd

log = logging.getLogger(__name__)

EXPECTED_COLUMNS = FIELD_NAMES
NUMERIC_COLUMNS = INTEGER_FIELDS
DERIVED_COLUMNS = ("row_no", "known_sku", "available_consistent")
EXTRA_PREFIX = "unexpected:"  # how a key the WMS sent beyond EXPECTED_COLUMNS shows in the frame
INTEGER_PATTERN = r"^-?[0-9]+$"
TABLE_CHECKS = ("columns", "row_count")


class ValidationFailed(PermanentError):
    """The WMS counts failed validation; nothing was written to the shop."""

    def __init__(self, failed: list[CheckResult]):
        self.failed = failed
        lines = "; ".join(f"{c.name}: {c.observed}" for c in failed)
        super().__init__(f"WMS counts failed validation, nothing was written: {lines}")


@dataclass
class CheckResult:
    name: str          # e.g. "quantity_non_negative[available]"
    check: str         # the policy key, e.g. "quantity_non_negative"
    success: bool
    observed: str
    examples: list[Any] = field(default_factory=list)
    policy: str = "fail"
    offending_rows: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_raw_frame(conn: psycopg.Connection, raw_table: str) -> pd.DataFrame:
    """The raw staging table as a DataFrame of strings (NULL -> NA, '' stays '')."""
    import pandas as pd

    buffer = io.BytesIO()
    with conn.cursor().copy(query("stocksync/copy_raw_counts_out", raw=raw_table, columns=raw_columns())) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    return pd.read_csv(buffer, dtype=str, keep_default_na=False, na_values=["\\N"])


def prepare_frame(raw: pd.DataFrame, catalog: set[str]) -> pd.DataFrame:
    """The frame GX validates: the columns that arrived (extra ones too), `<col>_num` numeric
    twins, and derived checks (`known_sku`, `available_consistent`)."""
    import pandas as pd

    frame = pd.DataFrame({"row_no": raw["row_no"].astype("int64"), "sku": raw["sku"]})
    missing = set(_split_keys(raw["missing_keys"]))
    numeric = {}
    for column in NUMERIC_COLUMNS:
        if column not in missing or raw[column].notna().any():
            frame[column] = raw[column]
        numeric[column] = pd.to_numeric(raw[column], errors="coerce")
        frame[f"{column}_num"] = numeric[column]
    for extra in sorted(set(_split_keys(raw["extra_keys"]))):
        # namespaced: an extra key named like a derived column (`available_num`, `known_sku`,
        # `row_no`...) must fail the columns check, not overwrite the column a check reads
        frame[f"{EXTRA_PREFIX}{extra}"] = pd.NA
    frame["known_sku"] = raw["sku"].isin(catalog)
    formula = numeric["on_hand"] - numeric["non_usable"] - numeric["allocated"]
    comparable = formula.notna() & numeric["available"].notna()
    frame["available_consistent"] = ~comparable | (formula == numeric["available"])
    return frame


def _split_keys(column: pd.Series) -> list[str]:
    return [key for value in column.dropna().unique() for key in str(value).split(",") if key]


def build_suite(settings: Settings, enabled_catalog: int, delta_rows: int | None = None) -> list[Any]:
    """The expectations for one WMS snapshot, as Great Expectations objects tagged with their check.

    For a change-feed delta (`delta_rows`, issue 13) the same checks, scaled: no row-count band (a
    delta has as many rows as SKUs changed), and a quarantine check tolerates as many offending
    rows as it would in a full snapshot of the enabled catalog (share x catalog), not that share
    of a delta of a few rows."""
    import great_expectations.expectations as gxe

    def mostly(check: str) -> float:
        if settings.dq_policies.get(check) != "quarantine":
            return 1.0
        share = settings.unknown_sku_max_share if check == "unknown_sku" else settings.quarantine_max_share
        if delta_rows is not None:
            return max(0.0, 1.0 - share * max(enabled_catalog, 1) / max(delta_rows, 1))
        return 1.0 - share

    def tag(check: str, column: str | None = None) -> dict[str, Any]:
        return {"check": check, "column": column}

    band = settings.row_count_band
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*EXPECTED_COLUMNS, *(f"{c}_num" for c in NUMERIC_COLUMNS), *DERIVED_COLUMNS],
            exact_match=True, meta=tag("columns")),
        *([] if delta_rows is not None else [gxe.ExpectTableRowCountToBeBetween(
            min_value=max(1, math.floor(enabled_catalog * (1 - band))),
            max_value=math.ceil(enabled_catalog * (1 + band)) if enabled_catalog else None, meta=tag("row_count"))]),
        gxe.ExpectColumnValuesToNotBeNull(column="sku", mostly=mostly("sku_not_null"), meta=tag("sku_not_null", "sku")),
        gxe.ExpectColumnValuesToBeUnique(column="sku", mostly=mostly("sku_unique"), meta=tag("sku_unique", "sku")),
        gxe.ExpectColumnValueLengthsToBeBetween(column="sku", min_value=1, max_value=64, mostly=mostly("sku_length"),
                                                meta=tag("sku_length", "sku")),
        gxe.ExpectColumnValuesToMatchRegex(column="sku", regex=settings.sku_pattern, mostly=mostly("sku_format"),
                                           meta=tag("sku_format", "sku")),
        gxe.ExpectColumnValuesToBeInSet(column="known_sku", value_set=[True], mostly=mostly("unknown_sku"),
                                        meta=tag("unknown_sku", "sku")),
        gxe.ExpectColumnValuesToBeInSet(column="available_consistent", value_set=[True],
                                        mostly=mostly("available_consistent"),
                                        meta=tag("available_consistent", "available")),
    ]
    for contract_field in ITEM_FIELDS:
        if contract_field.kind != "integer":
            continue
        column = contract_field.name
        upper = contract_field.maximum
        upper = getattr(settings, upper) if isinstance(upper, str) else upper
        lower = contract_field.minimum
        expectations += [
            gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=mostly("quantity_not_null"),
                                              meta=tag("quantity_not_null", column)),
            gxe.ExpectColumnValuesToMatchRegex(column=column, regex=INTEGER_PATTERN, mostly=mostly("quantity_integer"),
                                               meta=tag("quantity_integer", column)),
            gxe.ExpectColumnValuesToBeBetween(column=f"{column}_num", min_value=lower,
                                              mostly=mostly("quantity_non_negative"),
                                              meta=tag("quantity_non_negative", column)),
            gxe.ExpectColumnValuesToBeBetween(column=f"{column}_num", max_value=upper, mostly=mostly("quantity_max"),
                                              meta=tag("quantity_max", column)),
        ]
    return expectations


def _gx_objects(context: Any, settings: Settings, enabled_catalog: int, delta_rows: int | None = None) -> Any:
    """The file context's datasource, suite, validation definition and checkpoint (created or updated)."""
    import great_expectations as gx

    try:
        datasource = context.data_sources.get("wms")
    except (KeyError, ValueError, LookupError):
        datasource = context.data_sources.add_pandas("wms")
    try:
        asset = datasource.get_asset("wms_counts")
    except (KeyError, ValueError, LookupError):
        asset = datasource.add_dataframe_asset("wms_counts")
    try:
        batch_definition = asset.get_batch_definition("snapshot")
    except (KeyError, ValueError, LookupError):
        batch_definition = asset.add_batch_definition_whole_dataframe("snapshot")
    suite = gx.ExpectationSuite(name="wms_counts")
    for expectation in build_suite(settings, enabled_catalog, delta_rows):
        suite.add_expectation(expectation)
    suite = context.suites.add_or_update(suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name="wms_counts", data=batch_definition, suite=suite))
    return context.checkpoints.add_or_update(gx.Checkpoint(
        name="wms_counts", validation_definitions=[definition],
        actions=[],  # no UpdateDataDocsAction: see the module docstring
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row_no"],
                       "partial_unexpected_count": 5}))


def run_suite(frame: pd.DataFrame, settings: Settings, enabled_catalog: int, run_id: str,
              delta_rows: int | None = None) -> list[CheckResult]:
    """Validate `frame` with the suite in the GX file context under the reports folder;
    one CheckResult per expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    def run_in(context: Any) -> Any:
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        checkpoint = _gx_objects(context, settings, enabled_catalog, delta_rows)
        return checkpoint.run(batch_parameters={"dataframe": frame}, run_id=gx.RunIdentifier(run_name=run_key(run_id)))

    root = settings.reports_path / "gx"
    try:
        root.mkdir(parents=True, exist_ok=True)
        # one GX file context on disk: two runs validating at once (nightly and an ops push) take turns
        with (root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = run_in(gx.get_context(mode="file", project_root_dir=str(root)))
    except Exception as exc:  # noqa: BLE001 - issue 12: the reports folder is off the critical path
        # unwritable or full: the same suite in memory (a real validation error fails there too);
        # the teardown records the folder's problem on the run when it cannot write the report
        log.warning("GX file context under %s unusable (%s: %s); validating in memory", root, type(exc).__name__, exc)
        result = run_in(gx.get_context(mode="ephemeral"))
    checks = []
    for validation in result.run_results.values():
        for item in validation.results:
            checks.append(_check_result(item, settings, len(frame)))
    return checks


def _check_result(item: Any, settings: Settings, rows: int) -> CheckResult:
    meta = item.expectation_config.meta or {}
    check = meta.get("check") or item.expectation_config.type
    column = meta.get("column")
    name = f"{check}[{column}]" if column else check
    details = item.result or {}
    if item.exception_info and item.exception_info.get("raised_exception"):
        observed = f"could not be checked: {item.exception_info.get('exception_message')}"
    elif "observed_value" in details:
        observed = f"observed {details['observed_value']!r}"
    else:
        count = details.get("unexpected_count", 0)
        total = details.get("element_count", rows)
        observed = f"{count} of {total} rows offending"
    examples = [_json_safe(v) for v in details.get("partial_unexpected_list", [])[:5]]
    offending = [int(entry["row_no"]) for entry in details.get("unexpected_index_list") or []
                 if isinstance(entry, dict) and "row_no" in entry]
    policy = "fail" if check in TABLE_CHECKS else settings.dq_policies.get(check, "fail")
    return CheckResult(name, check, bool(item.success), observed, examples, policy, offending)


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
            {"run_id": run_id, "check_name": c.name, "success": c.success, "policy": c.policy,
             "observed": c.observed[:2000], "examples": orjson.dumps(c.examples).decode()}
            for c in checks
        ])


def quarantine_rows(conn: psycopg.Connection, run_id: str, raw_table: str, raw: pd.DataFrame,
                    reasons: dict[int, list[str]]) -> None:
    """Mark the rows out of the load and record them with their reasons and raw values."""
    with conn.cursor() as cur:
        cur.execute(query("stocksync/delete_quarantine"), {"run_id": run_id})
        if reasons:
            rows = raw[raw["row_no"].astype("int64").isin(list(reasons))]
            cur.executemany(query("stocksync/insert_quarantine"), [
                {"run_id": run_id, "row_no": int(record["row_no"]), "sku": record["sku"],
                 "reasons": reasons[int(record["row_no"])],
                 "raw": orjson.dumps({k: record[k] for k in ("page", *EXPECTED_COLUMNS)}, default=str).decode()}
                for record in rows.astype(object).where(rows.notna(), None).to_dict("records")
            ])
            cur.execute(query("stocksync/update_raw_quarantine", raw=raw_table), {"row_nos": list(reasons)})


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    rows: int
    valid: int
    quarantined: int
    failed_checks: list[str]
    seconds: float


def read_catalog(conn: psycopg.Connection) -> tuple[set[str], int]:
    rows = conn.execute(query("shop/select_catalog_skus")).fetchall()
    return {sku for sku, _ in rows}, sum(1 for _, enabled in rows if enabled)


def validate_counts(conn: psycopg.Connection, run_id: str, raw_table: str, settings: Settings, *,
                    delta: bool = False) -> ValidationResult:
    """Run the suite on the run's raw counts, record every check, quarantine what the policies
    allow, raise `ValidationFailed` if any check fails. `delta`: the counts are a change-feed
    delta (see `build_suite`)."""
    started = time.perf_counter()
    raw = load_raw_frame(conn, raw_table)
    catalog, enabled = read_catalog(conn)
    frame = prepare_frame(raw, catalog)
    checks = run_suite(frame, settings, enabled, run_id, len(frame) if delta else None)
    record_checks(conn, run_id, checks)
    failed = [c for c in checks if not c.success]
    reasons: dict[int, list[str]] = defaultdict(list)
    if not failed:
        for c in checks:
            if c.policy == "quarantine":
                for row_no in c.offending_rows:
                    reasons[row_no].append(c.name)
    quarantine_rows(conn, run_id, raw_table, raw, reasons)
    seconds = time.perf_counter() - started
    log.info("validated %d rows with %d checks in %.2fs: %d failed, %d rows quarantined",
             len(frame), len(checks), seconds, len(failed), len(reasons))
    if failed:
        raise ValidationFailed(failed)
    return ValidationResult(True, len(frame), len(frame) - len(reasons), len(reasons), [], seconds)
