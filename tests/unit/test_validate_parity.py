"""Validation measures the raw table where it is (in PostgreSQL, set-based) and must judge it exactly as before,
when the whole table was read into a pandas DataFrame and Great Expectations' pandas engine ran the
suite on it. That earlier path is kept here, verbatim, as the oracle: for every scenario below (sound
data, and every kind of broken value the WMS or a file can send, under the shipped policies and under
quarantine for every check) the checks recorded in `stocksync.dq_results` (name, success, policy,
observed text, examples as stored) and the quarantined rows (row, SKU, reasons, raw values) must be
the same. Runs on the real PostgreSQL test cluster.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from typing import Any

import orjson
import pytest

from include.stocksync.config.settings import CONFIG_PATH, Settings, load_settings
from include.stocksync.domain.contract import RAW_COPY_COLUMNS, raw_columns
from include.stocksync.store.db import connect, query
from include.stocksync.sync import validate
from include.stocksync.sync.extract import create_raw_table
from include.stocksync.sync.pipeline import open_run


# --------------------------------------------------------------------------- the oracle (the pandas + GX path)
def oracle_frame(conn: Any, raw_table: str) -> Any:
    """load_raw_frame + prepare_frame as they were."""
    import pandas as pd

    buffer = io.BytesIO()
    statement = query("stocksync/copy_raw_counts_out", raw=raw_table, columns=raw_columns())
    with conn.cursor().copy(statement) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    raw = pd.read_csv(buffer, dtype=str, keep_default_na=False, na_values=["\\N"])
    catalog = {sku for (sku,) in conn.execute("SELECT sku FROM shop.products")}

    def split_keys(column: Any) -> list[str]:
        return [key for value in column.dropna().unique() for key in str(value).split(",") if key]

    frame = pd.DataFrame({"row_no": raw["row_no"].astype("int64"), "sku": raw["sku"]})
    missing = set(split_keys(raw["missing_keys"]))
    numeric = {}
    for column in validate.NUMERIC_COLUMNS:
        if column not in missing or raw[column].notna().any():
            frame[column] = raw[column]
        numeric[column] = pd.to_numeric(raw[column], errors="coerce")
        frame[f"{column}_num"] = numeric[column]
    for extra in sorted(set(split_keys(raw["extra_keys"]))):
        frame[f"{validate.EXTRA_PREFIX}{extra}"] = pd.NA
    frame["known_sku"] = raw["sku"].isin(catalog)
    formula = numeric["on_hand"] - numeric["non_usable"] - numeric["allocated"]
    comparable = formula.notna() & numeric["available"].notna()
    frame["available_consistent"] = ~comparable | (formula == numeric["available"])
    return raw, frame


def oracle(conn: Any, raw_table: str, settings: Settings, delta: bool) -> tuple[list[dict[str, Any]], list[Any]]:
    """The checks and quarantined rows the GX pandas path produced."""
    import great_expectations as gx

    raw, frame = oracle_frame(conn, raw_table)
    enabled = conn.execute("SELECT count(*) FILTER (WHERE enabled) FROM shop.products").fetchone()[0]
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("wms").add_dataframe_asset("wms_counts")
    batch_definition = asset.add_batch_definition_whole_dataframe("snapshot")
    suite = gx.ExpectationSuite(name="wms_counts")
    for expectation in validate.build_suite(settings, enabled, len(frame) if delta else None):
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="wms_counts", data=batch_definition, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame}, result_format=validate.RESULT_FORMAT)
    checks = [validate._check_result(item, settings, len(frame)) for item in result.results]
    reasons: dict[int, list[str]] = defaultdict(list)
    if all(c.success for c in checks):
        for c in checks:
            if c.policy == "quarantine":
                for row_no in c.offending_rows:
                    reasons[row_no].append(c.name)
    rows = raw[raw["row_no"].astype("int64").isin(list(reasons))]
    quarantined = sorted(
        (int(record["row_no"]), record["sku"], reasons[int(record["row_no"])],
         {k: record[k] for k in ("page", *validate.EXPECTED_COLUMNS)})
        for record in rows.astype(object).where(rows.notna(), None).to_dict("records"))
    return [recorded(c) for c in checks], quarantined


def recorded(check: validate.CheckResult) -> dict[str, Any]:
    """A check as `record_checks` stores it."""
    return {"check_name": check.name, "success": check.success, "policy": check.policy,
            "observed": check.observed[:2000], "examples": json.loads(orjson.dumps(check.examples))}


# --------------------------------------------------------------------------- scenarios
GOOD = [("SKU-%03d" % n, str(50 + n), str(n % 3), str(n % 5), str(50 + n - n % 3 - n % 5), str(100 + n))
        for n in range(1, 41)]


def rows_with(*changes: tuple[int, dict[str, Any]], extra: list[tuple[Any, ...]] = ()) -> list[tuple[Any, ...]]:
    """GOOD with fields of some rows replaced ({field: value}); rows as COPY tuples."""
    names = ("sku", "on_hand", "non_usable", "allocated", "available", "seq")
    out = []
    for index, values in enumerate(GOOD):
        row = dict(zip(names, values, strict=True))
        row.update({"missing_keys": None, "extra_keys": None})
        for at, change in changes:
            if at == index:
                row.update(change)
        out.append((index // 10, *(row[n] for n in names), row["missing_keys"], row["extra_keys"]))
    return [*out, *extra]


ALL_QUARANTINE = {"sku_not_null": "quarantine", "sku_unique": "quarantine", "sku_length": "quarantine",
                  "sku_format": "quarantine", "quantity_not_null": "quarantine", "quantity_integer": "quarantine",
                  "quantity_non_negative": "quarantine", "quantity_max": "quarantine",
                  "available_consistent": "quarantine", "unknown_sku": "quarantine"}
ODD_QUANTITIES = ['"5"', "1.5", "-3", "+5", " 5", "007", "5\n", "NaN", "Infinity", "-Infinity",
                  "99999999999999999999", "-0", "1e3", "", "1_000", "true", "<JSON str \"x\">"]

SCENARIOS: dict[str, tuple[list[tuple[Any, ...]], dict[str, Any]]] = {
    "sound": (rows_with(), {}),
    "unknown SKUs quarantined": (rows_with((3, {"sku": "ZZ-1"}), (7, {"sku": "ZZ-2"})),
                                 {"unknown_sku_max_share": 0.2}),
    "unknown SKUs above the share": (rows_with((3, {"sku": "ZZ-1"}), (7, {"sku": "ZZ-2"})), {}),
    "missing and extra keys": (rows_with(
        (2, {"sku": None, "missing_keys": "sku"}), (4, {"on_hand": None, "missing_keys": "on_hand"}),
        (5, {"extra_keys": "colour,size\\,eu"})), {}),
    "a column nobody sends": (rows_with(*((i, {"non_usable": None, "missing_keys": "non_usable"})
                                          for i in range(len(GOOD)))), {}),
    "duplicates": (rows_with((1, {"sku": "SKU-003"}), (9, {"sku": "SKU-003"}), (12, {"sku": "SKU-013"})), {}),
    "odd SKUs": (rows_with((0, {"sku": ""}), (1, {"sku": "x" * 70}), (2, {"sku": "bad sku"}),
                           (3, {"sku": "ünï"}), (4, {"sku": "a\nb"}), (5, {"sku": "SKU-006\n"}),
                           (6, {"sku": "-lead"})), {}),
    "odd SKUs quarantined": (rows_with((0, {"sku": ""}), (1, {"sku": "x" * 70}), (2, {"sku": "bad sku"}),
                                       (4, {"sku": "a\nb"}), (5, {"sku": "SKU-006\n"})),
                             {"quarantine_max_share": 0.5, "unknown_sku_max_share": 0.5}),
    "odd quantities": (rows_with(*((i, {"on_hand": v}) for i, v in enumerate(ODD_QUANTITIES)),
                                 *((i + 17, {"seq": v}) for i, v in enumerate(ODD_QUANTITIES[:10]))), {}),
    "odd quantities quarantined": (rows_with(*((i, {"available": v}) for i, v in enumerate(ODD_QUANTITIES))),
                                   {"dq_policies": ALL_QUARANTINE, "quarantine_max_share": 0.9,
                                    "unknown_sku_max_share": 0.9}),
    "odd quantities an integer cast takes": (rows_with(
        *((i, {"on_hand": v}) for i, v in enumerate([" 5", "+5", "007", "-3", "5\n", "-0", "00", "5 "])),
        (9, {"seq": "999999999999999999"}), (10, {"seq": "1000000000000000000"}), (11, {"allocated": "0"})), {}),
    "inconsistent, negative, too big": (rows_with(
        (0, {"available": "999"}), (1, {"on_hand": "-1"}), (2, {"allocated": "2000000000"}),
        (3, {"seq": "0"}), (4, {"seq": "4611686018427387905"})), {}),
    "big numbers in a float column": (rows_with(
        (0, {"on_hand": "9007199254740993", "non_usable": "0", "allocated": "0", "available": "9007199254740992"}),
        (1, {"on_hand": "1.5"}), (2, {"available": "x"})), {"max_quantity": 10**17}),
    "everything quarantined": (rows_with(
        (0, {"sku": "ZZ-9"}), (1, {"available": "999"}), (2, {"on_hand": "-1", "available": "-1"}),
        (3, {"sku": "bad sku"}), (4, {"seq": "0"}), (5, {"allocated": None, "missing_keys": "allocated"}),
        (6, {"sku": "SKU-001"}), (8, {"on_hand": "abc"})),
        {"dq_policies": ALL_QUARANTINE, "quarantine_max_share": 0.5, "unknown_sku_max_share": 0.5}),
    "many inconsistent, many unknown": (rows_with(*((i, {"available": "1"}) for i in range(0, 24, 3)),
                                                 *((i, {"sku": f"ZZ-{i}"}) for i in range(1, 24, 3))), {}),
    "empty": ([], {}),
}


def settings_for(conf: dict[str, Any]) -> Settings:
    settings = load_settings(CONFIG_PATH, environ={})
    policies = conf.pop("dq_policies", None)
    update = dict(conf)
    if policies:
        update["dq_policies"] = {**settings.dq_policies, **policies}
    return settings.model_copy(update=update)


# delta mode only scales the limits: a few scenarios cover it
DELTA_SCENARIOS = ("sound", "unknown SKUs quarantined", "odd quantities quarantined", "empty")


@pytest.mark.parametrize(("name", "delta"), [*((name, False) for name in SCENARIOS),
                                             *((name, True) for name in DELTA_SCENARIOS)])
def test_checks_and_quarantine_are_what_the_dataframe_path_gave(clean_shop: str, tmp_path: Any, name: str,
                                                                delta: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "SKU_CHUNK_ROWS", 7)  # several chunks of SKUs for the pattern check
    rows, conf = SCENARIOS[name]
    settings = settings_for({**conf, "reports_dir": str(tmp_path)})
    run_id = f"parity-{abs(hash((name, delta)))}"
    open_run(clean_shop, run_id=run_id, dag_id="test", settings=settings)
    with connect(clean_shop) as conn:
        conn.execute("INSERT INTO shop.products (sku, name, enabled) SELECT 'SKU-' || lpad(n::text, 3, '0'), 'p', "
                     "n <= 38 FROM generate_series(1, 40) n")
        table = "raw_parity"
        create_raw_table(conn, table)
        with conn.cursor().copy(query("stocksync/copy_raw_counts", raw=table, columns=raw_columns())) as copy:
            for row in rows:
                assert len(row) == len(RAW_COPY_COLUMNS)
                copy.write_row(row)
        conn.commit()
        want_checks, want_quarantine = oracle(conn, table, settings, delta)
        conn.commit()
        try:
            validate.validate_counts(conn, run_id, table, settings, delta=delta)
        except validate.ValidationFailed:
            pass
        got_checks = [dict(zip(("check_name", "success", "policy", "observed", "examples"), r, strict=True))
                      for r in conn.execute("SELECT check_name, success, policy, observed, examples "
                                            "FROM stocksync.dq_results WHERE run_id = %s", (run_id,))]
        got_quarantine = sorted(conn.execute("SELECT row_no, sku, reasons, raw FROM stocksync.quarantine "
                                             "WHERE run_id = %s", (run_id,)).fetchall())
        flagged = sorted(r for (r,) in conn.execute(f"SELECT row_no FROM stocksync.{table} WHERE quarantined"))
        conn.rollback()
    key = lambda c: c["check_name"]  # noqa: E731
    assert sorted(got_checks, key=key) == sorted(want_checks, key=key)
    assert [tuple(q) for q in got_quarantine] == [tuple(q) for q in want_quarantine]
    assert flagged == [q[0] for q in want_quarantine]
