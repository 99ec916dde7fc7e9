"""Validate the raw WMS counts with a Great Expectations suite (shared/DESIGN.md §3.5).

The suite is code: `build_suite()` lists every expectation, each tagged with the check it
implements (`meta.check`), whose policy comes from the config (`dq_policies`):

- `fail`: any offending row stops the run; nothing is written;
- `quarantine`: offending rows are kept out of the load and listed in the report, as long
  as they stay under the check's limit (`unknown_sku_max_share`, `quarantine_max_share`);
  above it the run fails too.

Table-level checks (columns, row count against the catalog) always fail the run.
Validation judges the raw staging table (text, as received) where it is: `measure()`
counts in PostgreSQL, set-based, what every expectation would find in the frame GX used to be
given (the columns that arrived, `<col>_num` numeric twins, `known_sku`, `available_consistent`),
runs the SKU pattern with Python's `re` over the SKUs streamed in chunks, and judges in pandas,
as before, only the rows whose quantities are not plain digit strings (none on a sound night).
Each expectation of the suite then decides on those metrics itself (`evaluate()`: GX's success
rule, `mostly`, result format); the suite and the validation result are recorded in a GX file
context under the reports folder, one row per check in `stocksync.dq_results` and the
quarantined rows in `stocksync.quarantine`, and `ValidationFailed` names every failed check.
Memory stays flat: nothing holds the snapshot. tests/unit/test_validate_parity.py keeps the
DataFrame path as the oracle the results must equal. No Data Docs are built: GX's page shows WMS
text unescaped and loads scripts from CDNs, and the run report renders every check from
`stocksync.dq_results` instead.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import re
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
import psycopg.errors
from psycopg import sql

from include.stocksync.config.settings import Settings
from include.stocksync.domain.contract import FIELD_NAMES, INTEGER_FIELDS, ITEM_FIELDS, SKU_MAX_LENGTH
from include.stocksync.domain.errors import PermanentError
from include.stocksync.runs.reports import private_folder
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import shop_in_same_database
from include.stocksync.store.db import execute_file, query, run_key
from include.stocksync.sync.shop_mirror import mirror_catalog

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


def _split_keys(values: Any) -> list[str]:
    """The keys named in missing_keys / extra_keys values (comma-separated), None skipped."""
    return [key for value in dict.fromkeys(v for v in values if v is not None) for key in str(value).split(",") if key]


# --- the checks run where the data is ---------------------------------------------------
# The raw table is measured in PostgreSQL, set-based, in a few passes (the SKU pattern, a Python
# regex, over the SKUs streamed in chunks); rows whose quantities are not all plain digit strings
# (none on a sound night) are judged in pandas exactly as a DataFrame of the whole table was. What
# the passes find is handed to each expectation of the suite as the metrics GX would have computed,
# and the expectation itself decides (mostly, vacuous truth, result format): `evaluate()`.
EXAMPLES = 5  # GX's partial_unexpected_count: the examples a check records
RESULT_FORMAT = {"result_format": "COMPLETE", "unexpected_index_column_names": ["row_no"],
                 "partial_unexpected_count": EXAMPLES}
PLAIN_DIGITS = 18  # a quantity of at most this many digits (and nothing else) fits bigint, float-exact sign
SKU_CHUNK_ROWS = 100_000  # SKUs per chunk streamed to Python for the pattern check
CONSISTENCY = ("on_hand", "non_usable", "allocated", "available")  # available = on_hand - non_usable - allocated


@dataclass
class Offending:
    """The rows an expectation finds unexpected: how many, and (row_no, value) in row order: every
    one for a check that quarantines, else the first `EXAMPLES`."""

    count: int = 0
    rows: list[tuple[int, Any]] = field(default_factory=list)

    def add(self, row_no: int, value: Any, keep_all: bool) -> None:
        self.count += 1
        if keep_all or len(self.rows) < EXAMPLES:
            self.rows.append((row_no, value))

    def merged(self, other: Offending, keep_all: bool) -> Offending:
        rows = sorted([*self.rows, *other.rows], key=lambda r: r[0])
        return Offending(self.count + other.count, rows if keep_all else rows[:EXAMPLES])


@dataclass
class Profile:
    """What validation measured of one raw table: the frame GX used to see (its columns and their
    nulls) and, per (check, column of the expectation), the offending rows."""

    rows: int
    columns: list[str]
    nulls: dict[str, int]
    found: dict[tuple[str, str], Offending]
    absent: set[str]  # contract columns no row carries (GX cannot check a column that is not there)


def _keeps_all(settings: Settings, check: str) -> bool:
    return settings.dq_policies.get(check) == "quarantine"


def measure(conn: psycopg.Connection, raw_table: str, settings: Settings, catalog: sql.Composable) -> Profile:
    """Measure `raw_table` for every check of the suite (see the section comment). The SKU facts and
    the quantities are read on connections of their own while this one streams the SKUs through
    the pattern: the three passes run side by side (PostgreSQL's and Python's work overlap)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        sku_facts = pool.submit(_on_sibling, conn, lambda c: _sku_facts(c, raw_table, settings, catalog))
        quantity_facts = pool.submit(_on_sibling, conn, lambda c: _quantities(c, raw_table, settings))
        sku_format = _sku_format(conn, raw_table, settings)
        shapes = execute_file(conn, "stocksync/select_dq_key_shapes", raw=raw_table).fetchall()
        rows, skus, found = sku_facts.result()
        nonnull, numeric, quantity_found = quantity_facts.result()
    found[("sku_format", "sku")] = sku_format
    found.update(quantity_found)
    missing = set(_split_keys([m for m, _ in shapes]))
    extras = sorted(set(_split_keys([e for _, e in shapes])))
    absent = {c for c in NUMERIC_COLUMNS if c in missing and nonnull[c] == 0}
    columns = ["row_no", "sku"]
    nulls = {"row_no": 0, "sku": rows - skus, "known_sku": 0, "available_consistent": 0}
    for column in NUMERIC_COLUMNS:
        if column not in absent:
            columns.append(column)
        nulls[column] = rows - nonnull[column]
        columns.append(f"{column}_num")
        nulls[f"{column}_num"] = rows - numeric[column]
    columns += [f"{EXTRA_PREFIX}{extra}" for extra in extras]
    columns += ["known_sku", "available_consistent"]
    return Profile(rows, columns, nulls, found, absent)


def _on_sibling(conn: psycopg.Connection, work: Callable[[psycopg.Connection], Any]) -> Any:
    """`work` on a new read-only connection to `conn`'s database (the same libpq parameters), or on
    `conn` itself when no other connection can be had."""
    params = {o.keyword.decode(): o.val.decode() for o in conn.pgconn.info if o.val}
    try:
        sibling = psycopg.connect(**params)
    except psycopg.OperationalError as exc:
        log.warning("validation runs its passes one after the other: no second connection (%s)", exc)
        return work(conn)
    with sibling:
        sibling.read_only = True
        try:
            return work(sibling)
        finally:
            sibling.rollback()


def _sku_facts(conn: psycopg.Connection, raw_table: str, settings: Settings,
               catalog: sql.Composable) -> tuple[int, int, dict[tuple[str, str], Offending]]:
    """Rows, non-null SKUs, and what the SKU checks but the pattern find: not null, length, known, unique."""
    facts = execute_file(conn, "stocksync/select_dq_sku_facts", {"lengths": [1, SKU_MAX_LENGTH]}, raw=raw_table,
                         catalog=catalog).fetchone()
    assert facts is not None
    rows, skus, bad_length, unknown, distinct_hashes = (int(v) for v in facts)

    def rows_of(name: str, count: int, check: str, value: Any = None, **params: Any) -> Offending:
        offending = Offending(count)
        if count:
            limit = None if _keeps_all(settings, check) else EXAMPLES
            for row_no, got in execute_file(conn, name, {**params, "limit": limit}, raw=raw_table,
                                            catalog=catalog):
                offending.rows.append((int(row_no), got if value is None else value))
        return offending

    found = {
        ("sku_not_null", "sku"): rows_of("stocksync/select_dq_null_sku_rows", rows - skus, "sku_not_null"),
        ("sku_length", "sku"): rows_of("stocksync/select_dq_sku_length_rows", bad_length, "sku_length",
                                       lengths=[1, SKU_MAX_LENGTH]),
        ("unknown_sku", "known_sku"): rows_of("stocksync/select_dq_unknown_rows", unknown, "unknown_sku", value=False),
        ("sku_unique", "sku"): Offending(),
    }
    if distinct_hashes < skus:  # two SKUs share a hash: a duplicate, or (rarely) a collision
        duplicated = [sku for (sku,) in execute_file(conn, "stocksync/select_dq_duplicate_skus", raw=raw_table)]
        if duplicated:
            found[("sku_unique", "sku")] = _sku_rows(conn, raw_table, duplicated, _keeps_all(settings, "sku_unique"))
    return rows, skus, found


def _counted(offending: Offending, count: int) -> Offending:
    return Offending(count, offending.rows)


def _sku_rows(conn: psycopg.Connection, raw_table: str, skus: list[str], keep_all: bool) -> Offending:
    """The rows carrying any of `skus`, in row order."""
    offending = Offending()
    for row_no, sku in execute_file(conn, "stocksync/select_dq_sku_rows", {"skus": skus}, raw=raw_table):
        offending.add(int(row_no), sku, keep_all)
    return offending


def _sku_format(conn: psycopg.Connection, raw_table: str, settings: Settings) -> Offending:
    """The SKU pattern with Python's `re.search`, as GX's pandas engine applies it, over the SKUs
    streamed in chunks (memory: one chunk)."""
    pattern = re.compile(settings.sku_pattern)
    bad: set[str] = set()
    search = pattern.search
    with conn.cursor(name=f"dq_skus_{secrets.token_hex(4)}") as cur:
        cur.itersize = 1  # one chunk per fetch (psycopg's default, 100, held 100 chunks: 10M SKUs at once)
        cur.execute(query("stocksync/select_dq_sku_chunks", raw=raw_table), {"chunk": SKU_CHUNK_ROWS})
        for joined, with_newline in cur:  # a SKU holding the separator comes in the array
            chunk = [*(joined.split("\n") if joined is not None else ()), *(with_newline or ())]
            bad.update(sku for sku in chunk if search(sku) is None)
    if not bad:
        return Offending()
    return _sku_rows(conn, raw_table, sorted(bad), _keeps_all(settings, "sku_format"))


def _bounds(settings: Settings) -> dict[str, tuple[int | None, int | None]]:
    """(lower, upper) of every integer field, as build_suite checks them."""
    bounds = {}
    for contract_field in ITEM_FIELDS:
        if contract_field.kind == "integer":
            upper = contract_field.maximum
            bounds[contract_field.name] = (contract_field.minimum,
                                           getattr(settings, upper) if isinstance(upper, str) else upper)
    return bounds


def _plain_rows(raw_table: str, *, cast: bool) -> sql.Composed:
    """`stocksync/select_dq_plain_rows` for the contract's integer fields; `cast`: its cheaper form
    `select_dq_plain_rows_cast`, which fails (invalid text, out of range) unless every quantity casts."""
    fields = [sql.Identifier(c) for c in NUMERIC_COLUMNS]
    if not cast:
        return query(
            "stocksync/select_dq_plain_rows", raw=raw_table,
            fields=sql.SQL(", ").join(fields),
            lengths=sql.SQL(" AND ").join(sql.SQL("length({}) BETWEEN 1 AND {}").format(f, sql.Literal(PLAIN_DIGITS))
                                          for f in fields),
            concatenated=sql.SQL(" || ").join(fields),
            casts=sql.SQL(", ").join(sql.SQL("CASE WHEN plain THEN {}::bigint END AS {}").format(
                f, sql.Identifier(f"{c}_num")) for f, c in zip(fields, NUMERIC_COLUMNS, strict=True)))
    integers = [sql.Identifier(f"{c}_int") for c in NUMERIC_COLUMNS]

    def canonical(text: sql.Identifier, value: sql.Identifier) -> sql.Composable:
        # >= 0, no leading zero, as many bytes as the value has digits (more than PLAIN_DIGITS: never)
        digits = sql.SQL(" ").join(sql.SQL("WHEN {} < {} THEN {}").format(value, sql.Literal(10 ** n), sql.Literal(n))
                                   for n in range(1, PLAIN_DIGITS + 1))
        return sql.SQL("{v} >= 0 AND {t} NOT LIKE '0_%' AND octet_length({t}) = CASE {d} ELSE 0 END").format(
            v=value, t=text, d=digits)

    return query(
        "stocksync/select_dq_plain_rows_cast", raw=raw_table,
        fields=sql.SQL(", ").join(fields),
        bigints=sql.SQL(", ").join(sql.SQL("{}::bigint AS {}").format(f, i)
                                   for f, i in zip(fields, integers, strict=True)),
        integers=sql.SQL(", ").join(integers),
        canonical=sql.SQL(" AND ").join(canonical(f, i) for f, i in zip(fields, integers, strict=True)),
        casts=sql.SQL(", ").join(sql.SQL("CASE WHEN plain THEN {} END AS {}").format(
            i, sql.Identifier(f"{c}_num")) for i, c in zip(integers, NUMERIC_COLUMNS, strict=True)))


def _plain_conditions(settings: Settings, floats: dict[str, bool]) -> list[tuple[tuple[str, str], sql.Composable]]:
    """Per quantity check of a plain row: (check, expectation column) and its SQL condition, compared
    the way pandas compares the `<col>_num` column (float64 when the column has NaN or fractions)."""
    conditions: list[tuple[tuple[str, str], sql.Composable]] = []

    def compare(column: str, op: str, bound: int) -> sql.Composable:
        # GX holds an expectation's bounds as floats: pandas compares the column with them in float64
        return sql.SQL("{}::float8 {} {}::float8").format(sql.Identifier(f"{column}_num"), sql.SQL(op),
                                                          sql.Literal(float(bound)))

    for column, (lower, upper) in _bounds(settings).items():
        if lower is not None:
            conditions.append((("quantity_non_negative", f"{column}_num"), compare(column, "<", lower)))
        if upper is not None:
            conditions.append((("quantity_max", f"{column}_num"), compare(column, ">", upper)))
    on_hand, non_usable, allocated, available = (sql.Identifier(f"{c}_num") for c in CONSISTENCY)
    if any(floats[c] for c in CONSISTENCY[:3]):
        formula = sql.SQL("({}::float8 - {}::float8 - {}::float8)").format(on_hand, non_usable, allocated)
    else:
        formula = sql.SQL("({} - {} - {})").format(on_hand, non_usable, allocated)
    if any(floats[c] for c in CONSISTENCY):
        condition = sql.SQL("{}::float8 <> {}::float8").format(formula, available)
    else:
        condition = sql.SQL("{} <> {}").format(formula, available)
    conditions.append((("available_consistent", "available_consistent"), condition))
    return conditions


def _quantities(conn: psycopg.Connection, raw_table: str, settings: Settings
                ) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str], Offending]]:
    """Per quantity column its non-null count and its count of numbers (what `pd.to_numeric` would
    not have made NaN), and what the quantity checks find."""
    found: dict[tuple[str, str], Offending] = {}
    fields = [sql.Identifier(c) for c in NUMERIC_COLUMNS]

    def facts(floats: dict[str, bool]) -> tuple[Any, ...]:
        conditions = _plain_conditions(settings, floats)
        row = conn.execute(query(
            "stocksync/select_dq_quantity_facts", plain_rows=plain_rows,
            aggregates=sql.SQL(", ").join([
                *(sql.SQL("count({})").format(f) for f in fields),
                *(sql.SQL("count(*) FILTER (WHERE {})").format(c) for _, c in conditions)]))).fetchone()
        assert row is not None
        return tuple(row)

    floats = dict.fromkeys(NUMERIC_COLUMNS, False)
    plain_rows = _plain_rows(raw_table, cast=True)
    try:
        with conn.transaction():
            rows, plain, *counts = facts(floats)
    except (psycopg.errors.InvalidTextRepresentation, psycopg.errors.NumericValueOutOfRange):
        plain_rows = _plain_rows(raw_table, cast=False)  # a quantity that is no integer at all
        rows, plain, *counts = facts(floats)
    nonnull = dict(zip(NUMERIC_COLUMNS, counts[:len(fields)], strict=True))
    numeric = dict.fromkeys(NUMERIC_COLUMNS, int(plain))
    odd: dict[tuple[str, str], Offending] = {}
    if plain < rows:  # rows pandas must judge, which also tell whether a column is float64
        floats, odd = _odd_rows(conn, raw_table, settings, plain_rows, numeric, has_plain=plain > 0)
        if any(floats.values()):
            rows, plain, *counts = facts(floats)
    conditions = _plain_conditions(settings, floats)
    plain_counts = dict(zip((key for key, _ in conditions), counts[len(fields):], strict=True))
    plain_found = {key: Offending() for key in plain_counts}
    if any(plain_counts.values()):
        keep = {key: _keeps_all(settings, key[0]) for key in plain_counts}
        statement = query("stocksync/select_dq_plain_offending", plain_rows=plain_rows,
                          values=sql.SQL(", ").join(sql.Identifier(f"{c}_num") for c in NUMERIC_COLUMNS),
                          flags=sql.SQL(", ").join(sql.SQL("coalesce({}, false)").format(c) for _, c in conditions),
                          any=sql.SQL(" OR ").join(sql.SQL("coalesce({}, false)").format(c) for _, c in conditions))
        with conn.cursor(name=f"dq_plain_{secrets.token_hex(4)}") as cur:
            cur.execute(statement)
            for row_no, *rest in cur:
                values = dict(zip(NUMERIC_COLUMNS, rest[:len(fields)], strict=True))
                for (key, _), flag in zip(conditions, rest[len(fields):], strict=True):
                    if flag:
                        value: Any = False if key[1] == "available_consistent" else values[key[1][:-4]]
                        if key[1] != "available_consistent" and floats[key[1][:-4]]:
                            value = float(value)
                        plain_found[key].add(int(row_no), value, keep[key])
        for key, count in plain_counts.items():
            plain_found[key].count = int(count)
    for key, offending in plain_found.items():
        found[key] = offending.merged(odd.pop(key, Offending()), _keeps_all(settings, key[0]))
    found.update(odd)  # not null and integer: only odd rows break them
    for column in NUMERIC_COLUMNS:
        for check in ("quantity_not_null", "quantity_integer"):
            found.setdefault((check, column), Offending())
    return {c: int(n) for c, n in nonnull.items()}, numeric, found


def _odd_rows(conn: psycopg.Connection, raw_table: str, settings: Settings, plain_rows: sql.Composable,
              numeric: dict[str, int], *, has_plain: bool) -> tuple[dict[str, bool], dict[tuple[str, str], Offending]]:
    """The rows whose quantities are not all plain, judged with pandas as the whole-table frame
    judged them: which columns are float64 (`pd.to_numeric` over the column, a plain value standing
    for all plain ones), and what each quantity check finds in these rows. Adds their numbers to
    `numeric`."""
    import pandas as pd

    fetched = conn.execute(query("stocksync/select_dq_odd_rows", plain_rows=plain_rows,
                                 fields=sql.SQL(", ").join(sql.Identifier(c) for c in NUMERIC_COLUMNS))).fetchall()
    row_nos = [int(r[0]) for r in fetched]
    texts = {c: pd.Series([r[i + 1] for r in fetched], dtype=str) for i, c in enumerate(NUMERIC_COLUMNS)}
    found: dict[tuple[str, str], Offending] = {}
    floats: dict[str, bool] = {}
    numbers: dict[str, pd.Series] = {}
    bounds = _bounds(settings)
    for column, text in texts.items():
        stand_in = pd.Series(["0"] if has_plain else [], dtype=str)
        converted = pd.to_numeric(pd.concat([text, stand_in], ignore_index=True), errors="coerce")
        floats[column] = converted.dtype.kind == "f"
        values = converted.iloc[:len(text)]
        numbers[column] = values
        numeric[column] += int(values.notna().sum())
        not_null, integer = Offending(), Offending()
        number = Offending()
        keep = {check: _keeps_all(settings, check) for check in ("quantity_not_null", "quantity_integer",
                                                                 "quantity_non_negative", "quantity_max")}
        present = text.notna()
        matches = text[present].str.contains(INTEGER_PATTERN)
        for row_no, is_null in zip(row_nos, (~present).tolist(), strict=True):
            if is_null:
                not_null.add(row_no, None, keep["quantity_not_null"])
        for index, ok in matches.items():
            if not ok:
                integer.add(row_nos[index], text[index], keep["quantity_integer"])
        found[("quantity_not_null", column)] = not_null
        found[("quantity_integer", column)] = integer
        lower, upper = bounds[column]
        # GX holds an expectation's bounds as floats: pandas compares the column with them in float64
        for check, bad in (("quantity_non_negative", values < float(lower) if lower is not None else None),
                           ("quantity_max", values > float(upper) if upper is not None else None)):
            if bad is None:
                continue
            number = Offending()
            for index in bad[bad].index:
                number.add(row_nos[index], values[index].item() if hasattr(values[index], "item") else values[index],
                           keep[check])
            found[(check, f"{column}_num")] = number
    formula = numbers["on_hand"] - numbers["non_usable"] - numbers["allocated"]
    comparable = formula.notna() & numbers["available"].notna()
    consistent = ~comparable | (formula == numbers["available"])
    inconsistent = Offending()
    for index in consistent[~consistent].index:
        inconsistent.add(row_nos[index], False, _keeps_all(settings, "available_consistent"))
    found[("available_consistent", "available_consistent")] = inconsistent
    return floats, found


def _metric(name: str, column: str | None, profile: Profile, offending: Offending) -> Any:
    """The value of GX metric `name` for an expectation on `column`, from the profile."""
    if name == "table.row_count":
        return profile.rows
    if name == "table.columns":
        return list(profile.columns)
    if name == "column_values.nonnull.unexpected_count":
        return profile.nulls[str(column)]
    suffix = name.rsplit(".", 1)[-1]
    if suffix == "unexpected_count":
        return offending.count
    if suffix == "unexpected_values":
        return [value for _, value in offending.rows]
    if suffix == "unexpected_index_list":
        return [{column: value, "row_no": row_no} for row_no, value in offending.rows]
    if suffix == "unexpected_index_query":
        return None
    raise KeyError(f"validation measures no metric {name!r}: teach validate.measure() the new expectation")


class _Measured(Mapping[Any, Any]):
    """The metrics of one expectation as GX looks them up (by its `MetricConfiguration.id`, a named
    tuple led by the metric's name), each answered from the profile (`_metric`). GX works out an
    expectation's metric dependencies in `metrics_validate`; answering whatever it asks for spares
    working them out a second time only to key a dict (half of the judging's cost)."""

    def __init__(self, column: str | None, profile: Profile, offending: Offending) -> None:
        self.column, self.profile, self.offending = column, profile, offending

    def __getitem__(self, metric_id: Any) -> Any:
        return _metric(metric_id[0], self.column, self.profile, self.offending)

    def __contains__(self, metric_id: object) -> bool:
        self[metric_id]  # KeyError: a metric validation does not measure (named in the message)
        return True

    def __iter__(self) -> Iterator[Any]:  # nothing is listed: every metric is computed on demand
        return iter(())

    def __len__(self) -> int:
        return 0


def evaluate(expectations: list[Any], profile: Profile) -> list[Any]:
    """Each expectation judged by GX on the measured profile (`Expectation.metrics_validate`: its
    own success rule, `mostly`, vacuous truth and result format), as a GX validation result."""
    from great_expectations.core import ExpectationValidationResult

    import include.stocksync.sync.gx_library  # noqa: F401  (Great Expectations, imported quietly)

    runtime = {"result_format": RESULT_FORMAT}
    results = []
    for expectation in expectations:
        column = getattr(expectation, "column", None)
        if column is not None and column not in profile.columns:
            # what GX answers for a column the batch does not have: no result, the error filed under
            # the metric it could not compute (so _check_result reads it as nothing counted)
            results.append(ExpectationValidationResult(
                success=False, result={}, expectation_config=expectation.configuration,
                exception_info={f"{expectation.map_metric}.condition": {
                    "raised_exception": True, "exception_traceback": None,
                    "exception_message": f'Error: The column "{column}" in BatchData does not exist.'}}))
            continue
        offending = profile.found.get(((expectation.meta or {}).get("check"), column), Offending())
        results.append(expectation.metrics_validate(_Measured(column, profile, offending),
                                                    runtime_configuration=dict(runtime)))
    return results


def build_suite(settings: Settings, enabled_catalog: int, delta_rows: int | None = None) -> list[Any]:
    """The expectations for one WMS snapshot, as Great Expectations objects tagged with their check.

    For a change-feed delta (`delta_rows`) the same checks, scaled: no row-count band (a
    delta has as many rows as SKUs changed), and a quarantine check tolerates as many offending
    rows as it would in a full snapshot of the enabled catalog (share x catalog), not that share
    of a delta of a few rows."""
    import great_expectations.expectations as gxe

    import include.stocksync.sync.gx_library  # noqa: F401  (Great Expectations, imported quietly)

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


def run_suite(profile: Profile, settings: Settings, enabled_catalog: int, run_id: str,
              delta_rows: int | None = None) -> list[CheckResult]:
    """Judge the measured profile with the suite (`evaluate`) and record the suite and its validation
    result in the GX file context under the reports folder; one CheckResult per expectation."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from include.stocksync.sync.gx_library import gx

    def run_in(context: Any) -> Any:
        suite = _stored_suite(context, gx.ExpectationSuite(
            name="wms_counts", expectations=build_suite(settings, enabled_catalog, delta_rows)))
        results = evaluate(suite.expectations, profile)
        # run_time given: without it GX reads the run name as a date, and a run key of digits only
        # either is one ("0000000000000001") or breaks dateutil ("4412345678901234": OverflowError)
        run = gx.RunIdentifier(run_name=run_key(run_id), run_time=datetime.now(timezone.utc))
        passed = sum(1 for r in results if r.success)
        result = ExpectationSuiteValidationResult(
            success=passed == len(results), results=results, suite_name=suite.name,
            statistics={"evaluated_expectations": len(results), "successful_expectations": passed,
                        "unsuccessful_expectations": len(results) - passed,
                        "success_percent": 100.0 * passed / len(results) if results else None},
            meta={"run_id": run, "validation_time": run.run_time, "active_batch_definition": "wms_counts"})
        context.validation_results_store.set(ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name), run_id=run,
            batch_identifier="wms-wms_counts"), result)
        return results

    root = settings.reports_path / "gx"
    try:
        # GX's files hold WMS values (the examples of a failed check): private like the reports,
        # its folder 0700 and what GX writes there 0600 (GX creates its files with the umask's mode)
        private_folder(root)
        # one GX file context on disk: two runs validating at once (nightly and an ops push) take turns
        with _private_files(), (root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            results = run_in(_file_context(root))
    except Exception as exc:  # noqa: BLE001 - the reports folder is off the critical path
        # unwritable or full: the same suite in memory (a real validation error fails there too);
        # the teardown records the folder's problem on the run when it cannot write the report
        log.warning("GX file context under %s unusable (%s: %s); validating in memory", root, type(exc).__name__, exc)
        results = run_in(gx.get_context(mode="ephemeral"))
    return [_check_result(item, settings, profile.rows) for item in results]


# The GX file context of each folder, opened once per process: opening one reads and checks its
# configuration (75-95 ms on the two-core machine), and the runs of one process (a worker, the tests'
# in-process DAG runs) would each pay it. Its stores read and write the files on every call, so a
# cached context sees what another process wrote; a folder removed since is opened afresh.
_FILE_CONTEXTS: dict[Path, Any] = {}


def _file_context(root: Path) -> Any:
    from include.stocksync.sync.gx_library import gx

    context = _FILE_CONTEXTS.get(root)
    if context is None or not (Path(context.root_directory) / "great_expectations.yml").is_file():
        context = _FILE_CONTEXTS[root] = gx.get_context(mode="file", project_root_dir=str(root))
    return context


def _expectation_terms(suite: Any) -> list[dict[str, Any]]:
    """What each expectation of `suite` asks (type, arguments, meta, severity), in order, without
    the id the store gave it."""
    return [{k: v for k, v in e.configuration.to_json_dict().items() if k != "id"} for e in suite.expectations]


def _stored_suite(context: Any, suite: Any) -> Any:
    """`suite` as stored in `context`, written only when it differs from the stored one, and then
    replaced whole (built whole, then stored once: add_expectation on a stored suite writes it per
    expectation). The suite changes with the settings and the catalog's size (its row-count band).
    GX's add_or_update would compare the two suites expectation by expectation against each other:
    150 ms for 28 expectations on the two-core machine, against 20 ms to read and compare the stored
    one and 30 ms to replace it. Two runs never do this at once (the folder's lock)."""
    from great_expectations.exceptions import DataContextError

    try:
        stored = context.suites.get(suite.name)
    except DataContextError:  # no such suite yet
        stored = None
    if stored is not None:
        if _expectation_terms(stored) == _expectation_terms(suite):
            return stored
        context.suites.delete(suite.name)
    return context.suites.add(suite)


@contextmanager
def _private_files() -> Iterator[None]:
    """Files and folders created inside the block are for this user only (umask 077). The umask is
    the process's: a file another thread creates meanwhile is private too, never more open."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


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


def quarantine_rows(conn: psycopg.Connection, run_id: str, raw_table: str, reasons: dict[int, list[str]]) -> None:
    """Mark the rows out of the load and record them with their reasons and raw values (as text)."""
    with conn.cursor() as cur:
        cur.execute(query("stocksync/delete_quarantine"), {"run_id": run_id})
        if reasons:
            raw_values = sql.SQL(", ").join(sql.SQL("{}, r.{}{}").format(
                sql.Literal(name), sql.Identifier(name), sql.SQL("::text" if name == "page" else ""))
                for name in ("page", *EXPECTED_COLUMNS))
            cur.execute(query("stocksync/insert_quarantine_rows", raw=raw_table, raw_values=raw_values),
                        {"run_id": run_id, "rows": orjson.dumps([{"row_no": r, "reasons": why}
                                                                 for r, why in reasons.items()]).decode()})
            cur.execute(query("stocksync/update_raw_quarantine", raw=raw_table), {"row_nos": list(reasons)})


@dataclass(frozen=True)
class ValidationResult:
    success: bool
    rows: int
    valid: int
    quarantined: int
    failed_checks: list[str]
    seconds: float


def validate_counts(conn: psycopg.Connection, run_id: str, raw_table: str, settings: Settings, *,
                    delta: bool = False, shop: ShopPort | None = None) -> ValidationResult:
    """Run the suite on the run's raw counts, record every check, quarantine what the policies
    allow, raise `ValidationFailed` if any check fails. `delta`: the counts are a change-feed
    delta (see `build_suite`). The catalog is the run's copy of the shop's (taken through `shop`,
    the shop in `conn`'s database when none is given)."""
    started = time.perf_counter()
    catalog = mirror_catalog(conn, shop or shop_in_same_database(conn), run_id).catalog()
    profile = measure(conn, raw_table, settings, catalog)
    enabled = execute_file(conn, "stocksync/select_enabled_count", catalog=catalog).fetchone()
    checks = run_suite(profile, settings, int(enabled[0]) if enabled else 0, run_id, profile.rows if delta else None)
    record_checks(conn, run_id, checks)
    failed = [c for c in checks if not c.success]
    reasons: dict[int, list[str]] = defaultdict(list)
    if not failed:
        for c in checks:
            if c.policy == "quarantine":
                for row_no in c.offending_rows:
                    reasons[row_no].append(c.name)
    quarantine_rows(conn, run_id, raw_table, reasons)
    seconds = time.perf_counter() - started
    log.info("validated %d rows with %d checks in %.2fs: %d failed, %d rows quarantined",
             profile.rows, len(checks), seconds, len(failed), len(reasons))
    if failed:
        raise ValidationFailed(failed)
    return ValidationResult(True, profile.rows, profile.rows - len(reasons), len(reasons), [], seconds)
