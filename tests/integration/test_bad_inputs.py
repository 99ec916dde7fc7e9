"""Bad WMS feeds through the real pipeline, the real WMS service and shop DB.

Each case asserts its outcome: a failed run (shop stock byte-for-byte unchanged, freeze
released, the report naming the problem) or quarantined rows (the run goes on, the rows
are listed in the report and kept out of the shop).

Every bad-feed case runs through the pipeline's steps in the DAG's order (`nightly_steps`: what
the DAG's tasks call, teardown included) and must stop with a permanent error, which the DAG's
tasks turn into an immediate failure without retries; a few cases also run the whole DAG
(`dag.test()`), with the quarantine, the guardrails on a normal night and the capped pages, for
the wiring.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.demo_seed import load_catalog
from include.stocksync.domain.errors import is_permanent
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import active_freezes, shop_in_line_with_wms, stock_fingerprint
from tests.integration.loop_helpers import nightly_steps
from tests.integration.test_nightly_sync import run_nightly

pytestmark = pytest.mark.slow

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "include" / "config" / "stocksync.yaml"
SKUS = 40  # two pages of 25 (tests use page_size 25)
LONG_SKU = "X" * 10_000
INJECTION_SKU = "x'); DROP TABLE stock;--"
UNICODE_SKU = "SKÜ-ß-😀"


def corrupt(sku: int, field: str, value: Any) -> dict[str, Any]:
    return {"corrupt": [{"sku": f"SKU-{sku:07d}", "field": field, "value": value}]}


def rename(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {"sku_rename": {f"SKU-{n:07d}": new for n, new in pairs}}


# (case id, WMS faults, checks of which at least one must be reported failed)
FAILING_CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("negative-quantity", corrupt(3, "available", -5), {"quantity_non_negative[available]",
                                                         "available_consistent[available]"}),
    ("negative-on-hand", corrupt(4, "on_hand", -1), {"quantity_non_negative[on_hand]"}),
    ("float-quantity", corrupt(5, "available", 1.5), {"quantity_integer[available]"}),
    ("nan-quantity", corrupt(6, "available", "__NaN__"), {"quantity_integer[available]"}),
    ("infinity-quantity", corrupt(7, "available", "__Infinity__"), {"quantity_integer[available]"}),
    ("string-quantity", corrupt(8, "available", "abc"), {"quantity_integer[available]"}),
    ("boolean-quantity", corrupt(9, "available", True), {"quantity_integer[available]"}),
    ("object-quantity", corrupt(10, "available", {"units": 5}), {"quantity_integer[available]"}),
    ("null-quantity", corrupt(11, "available", None), {"quantity_not_null[available]"}),
    ("huge-quantity", corrupt(12, "available", 10**30), {"quantity_max[available]"}),
    ("above-max-quantity", corrupt(13, "on_hand", 2_000_000_000), {"quantity_max[on_hand]"}),
    ("negative-seq", corrupt(14, "seq", -3), {"quantity_non_negative[seq]"}),
    ("inconsistent-available", corrupt(15, "available", 999), {"available_consistent[available]"}),
    ("missing-sku", corrupt(16, "sku", "__drop__"), {"sku_not_null[sku]"}),
    ("empty-sku", rename((17, "")), {"sku_length[sku]", "sku_format[sku]"}),
    ("duplicated-sku", {"duplicate_sku": "SKU-0000018"}, {"sku_unique[sku]"}),
    ("10000-char-sku", rename((19, LONG_SKU)), {"sku_length[sku]"}),
    ("unicode-sku", rename((20, UNICODE_SKU)), {"sku_format[sku]"}),
    ("sql-injection-sku", rename((21, INJECTION_SKU)), {"sku_format[sku]"}),
    ("missing-column", {"drop_fields": ["non_usable"]}, {"columns"}),
    ("extra-column", {"extra_fields": {"warehouse": "A"}}, {"columns"}),
    # an extra key named like a column the checks read must not hide the negative quantity
    ("extra-column-shadowing-a-check", {**corrupt(25, "available", -5), "extra_fields": {"available_num": 1}},
     {"columns"}),
    ("extra-column-named-row-no", {"extra_fields": {"row_no": "x", "known_sku": True}}, {"columns"}),
    ("empty-snapshot", {"max_items": 0}, {"row_count"}),
    ("half-the-catalog", {"max_items": SKUS // 2}, {"row_count"}),
    ("one-page-repeated", {"repeat_page": 0}, {"sku_unique[sku]"}),
    ("last-page-missing", {"drop_last_page": True}, {"row_count"}),
    ("too-many-unknown-skus", rename((22, "SKU-9000001"), (23, "SKU-9000002"), (24, "SKU-9000003")),
     {"unknown_sku[sku]"}),
    ("every-quantity-zero", {"zero_all": True}, {"guardrail:max_zeroed_share", "guardrail:max_total_units_change"}),
]


@pytest.fixture
def shop(clean_shop: str, wms: Any) -> str:
    return shop_in_line_with_wms(clean_shop, wms, SKUS, 21, drift_share=0.1)


def failed_checks(dsn: str, run_id: str) -> set[str]:
    with connect(dsn) as conn:
        return {row[0] for row in conn.execute(
            "SELECT check_name FROM stocksync.dq_results WHERE run_id = %s AND NOT success", (run_id,))}


# The bad-feed cases that also run the whole DAG: a validation check, the column contract and a
# guardrail, each stopping a different task.
DAG_CASES = ("negative-quantity", "missing-column", "every-quantity-zero")


@pytest.mark.parametrize(("faults", "expected"), [case[1:] for case in FAILING_CASES],
                         ids=[case[0] for case in FAILING_CASES])
def test_bad_feed_fails_the_run_and_writes_nothing(shop: str, stocksync_dsn: str, wms: Any, faults: dict[str, Any],
                                                   expected: set[str]) -> None:
    fingerprint = stock_fingerprint(shop)
    wms.admin.faults(**faults)
    run_id = f"manual__bad-feed-{uuid.uuid4().hex[:12]}"

    stopped = nightly_steps(shop, wms, run_id, store=stocksync_dsn)

    # a permanent error: the DAG's task fails at once, without retries (dag_factory._fail_fast)
    assert stopped is not None and is_permanent(stopped[1]), repr(stopped)
    assert_failed_and_nothing_written(shop, stocksync_dsn, run_id, fingerprint, expected)


@pytest.mark.parametrize(("faults", "expected"), [case[1:] for case in FAILING_CASES if case[0] in DAG_CASES],
                         ids=[case[0] for case in FAILING_CASES if case[0] in DAG_CASES])
def test_bad_feed_fails_the_dag_run_and_writes_nothing(dagbag: Any, shop: str, stocksync_dsn: str, wms: Any,
                                                       faults: dict[str, Any], expected: set[str]) -> None:
    from airflow.utils.state import DagRunState

    fingerprint = stock_fingerprint(shop)
    wms.admin.faults(**faults)

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.FAILED
    assert_failed_and_nothing_written(shop, stocksync_dsn, dag_run.run_id, fingerprint, expected)


def assert_failed_and_nothing_written(shop: str, store: str, run_id: str, fingerprint: list[tuple[Any, ...]],
                                      expected: set[str]) -> None:
    """Shop stock byte-for-byte unchanged, no freeze left, the run failed on one of `expected`'s
    checks and its report and error name it."""
    assert stock_fingerprint(shop) == fingerprint
    assert active_freezes(shop) == []
    run = pipeline.get_run(store, run_id)
    assert run["status"] == "failed"
    failed = failed_checks(store, run_id)
    assert failed & expected, f"expected one of {expected}, got {failed}"
    report = Path(run["report_path"]).read_text()
    named = sorted(failed & expected)[0]
    # the report names the check (a guardrail by its name, tagged as one)
    assert named.removeprefix("guardrail:") in report and "FAILED" in report
    assert named.split("[")[0].removeprefix("guardrail:") in run["error"]
    with connect(shop) as conn:  # the injection SKU stayed data
        assert conn.execute("SELECT count(*) FROM shop.stock").fetchone() == (SKUS,)


def test_unknown_sku_within_limit_is_quarantined(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any) -> None:
    from airflow.utils.state import DagRunState

    shop_in_line_with_wms(clean_shop, wms, 200, 22, drift_share=0.1)  # 1 unknown of 200 = 0.5%: under 1%
    before = {sku: qty for sku, qty, _, _ in stock_fingerprint(clean_shop)}
    wms.admin.faults(**rename((30, "SKU-9000030")))

    dag_run = run_nightly(dagbag, {"page_size": 100})

    assert dag_run.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert run["quarantined"] == 1 and run["valid"] == 199 and run["extracted"] == 200
    with connect(stocksync_dsn) as conn:
        quarantined = conn.execute("SELECT sku, reasons FROM stocksync.quarantine WHERE run_id = %s",
                                   (dag_run.run_id,)).fetchall()
        audited = conn.execute("SELECT count(*) FROM stocksync.sku_outcomes(%s)", (dag_run.run_id,)).fetchone()
    assert quarantined == [("SKU-9000030", ["unknown_sku[sku]"])]
    assert audited == (199,)
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(clean_shop)}
    assert after["SKU-0000030"] == before["SKU-0000030"]  # its record was renamed away: untouched
    assert sum(1 for sku in after if after[sku] != before[sku]) > 0  # the drift elsewhere was repaired
    report = Path(run["report_path"]).read_text()
    assert "Quarantined rows" in report and "SKU-9000030" in report and "unknown_sku[sku]" in report


def test_normal_night_passes_every_guardrail(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any) -> None:
    """A few percent of SKUs moving, judged against the shipped default guardrails: the run's
    figures and verdicts against the same figures worked out here from the WMS's records before and
    after the move, and the limits in the shipped configuration file."""
    from airflow.utils.state import DagRunState

    wms.admin.reset(500, 23)
    with connect(clean_shop) as conn:
        load_catalog(conn, wms.admin.items(), random.Random(23), drift_share=0.0)
        conn.execute("UPDATE shop.stock SET wms_seq = 0")
        conn.commit()
    before = {item["sku"]: item["available"] for item in wms.admin.items()}  # the shop's stock, no drift
    rng = random.Random(5)
    moved = rng.sample(range(1, 501), k=20)  # 4% of SKUs move in the WMS overnight
    wms.admin.set_items([{"sku": f"SKU-{n:07d}", "on_hand": rng.randint(0, 400), "non_usable": 0, "allocated": 0}
                         for n in moved])
    after = {item["sku"]: item["on_hand"] - item["non_usable"] - item["allocated"] for item in wms.admin.items()}

    dag_run = run_nightly(dagbag, {"page_size": 100})

    assert dag_run.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert 0 < run["changed"] + run["clamped"] <= 20
    # every SKU of the catalog is known and covered, none stale; shares are over the 500 SKUs
    expected = {
        "min_catalog_coverage": 1.0,
        "max_changed_share": sum(1 for sku in before if after[sku] != before[sku]) / 500,
        "max_zeroed_share": sum(1 for sku in before if before[sku] > 0 and after[sku] == 0) / 500,
        "max_total_units_change": abs(sum(after.values()) - sum(before.values())) / sum(before.values()),
        "max_stale_share": 0.0,
    }
    limits = yaml.safe_load(SHIPPED_CONFIG.read_text())["guardrails"]
    verdict = {name: value >= limits[name] if name.startswith("min_") else value <= limits[name]
               for name, value in expected.items()}
    assert all(verdict.values()), (expected, limits)  # a normal night, by the shipped limits
    assert {g["name"]: g["value"] for g in run["guardrails"]} == pytest.approx(expected)
    assert {g["name"]: g["success"] for g in run["guardrails"]} == verdict


def test_a_wms_capping_its_pages_and_stamping_each_is_synced(dagbag: Any, shop: str, stocksync_dsn: str,
                                                            wms: Any) -> None:
    """A WMS serving 7 items a page whatever the page size asked for, each page stamped with the
    time it was served: the night walks all ceil(40 / 7) = 6 pages and applies them, with the first
    (earliest) page's time as snapshot time and watermark. The run asks for the shipped page size
    (not the tests' 25): the walk's page bound must follow the 7 that arrive, not the size asked."""
    from airflow.utils.state import DagRunState

    shipped_page_size = yaml.safe_load(SHIPPED_CONFIG.read_text())["page_size"]
    wms.admin.faults(page_size_cap=7, stamp_pages=True, latency_ms=1)
    live = {item["sku"]: item["available"] for item in wms.admin.items()}

    dag_run = run_nightly(dagbag, {"page_size": shipped_page_size})

    assert dag_run.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert run["status"] == "applied" and run["pages"] == 6 and run["extracted"] == SKUS
    assert run["orders_counted_until"] == run["snapshot_taken_at"]
    assert {sku: qty for sku, qty, _, _ in stock_fingerprint(shop)} == live  # no orders: the WMS's figures
