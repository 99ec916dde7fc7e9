"""`inventory_full_push` with `dag.test()`: dry run, SKU subset, guardrail override, misuse."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import active_freezes, fresh_dag, shop_in_line_with_wms, stock_fingerprint

pytestmark = pytest.mark.slow


def push(dagbag: Any, conf: dict[str, Any]) -> Any:
    return fresh_dag(dagbag, "inventory_full_push").test(run_conf=conf)


@pytest.fixture
def drifted_shop(clean_shop: str, wms: Any) -> str:
    """40 SKUs; the shop drifted on about half of them."""
    return shop_in_line_with_wms(clean_shop, wms, 40, 31, drift_share=0.5)


def test_dry_run_writes_the_plan_and_nothing_else(dagbag: Any, drifted_shop: str, stocksync_dsn: str, wms: Any) -> None:
    from airflow.utils.state import DagRunState

    fingerprint = stock_fingerprint(drifted_shop)
    wms_items = {item["sku"]: item for item in wms.admin.items()}

    dag_run = push(dagbag, {"dry_run": True})

    assert dag_run.state == DagRunState.SUCCESS
    assert stock_fingerprint(drifted_shop) == fingerprint
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert run["status"] == "dry_run" and run["freeze_seconds"] == 0
    with connect(drifted_shop) as conn:
        assert conn.execute("SELECT count(*) FROM shop.checkout_freezes").fetchone() == (0,)
    with connect(stocksync_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.sku_audit WHERE run_id = %s",
                            (dag_run.run_id,)).fetchone() == (0,)
    directory = Path(run["report_path"]).parent
    with (directory / "plan.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40
    assert list(rows[0]) == ["sku", "current", "wms_available", "adjustment", "new", "delta", "outcome"]
    current = {sku: qty for sku, qty, _, _ in fingerprint}
    for row in rows:
        assert int(row["current"]) == current[row["sku"]]
        assert int(row["wms_available"]) == wms_items[row["sku"]]["available"]
        assert int(row["new"]) == wms_items[row["sku"]]["available"] - int(row["adjustment"])
        assert int(row["delta"]) == int(row["new"]) - int(row["current"])
        assert row["outcome"] == ("unchanged" if row["delta"] == "0" else "changed")
    assert any(row["delta"] != "0" for row in rows)
    plan_html = (directory / "plan.html").read_text()
    assert "Nothing was written to the shop" in plan_html and rows[0]["sku"] in plan_html
    assert "plan.html" in Path(run["report_path"]).read_text()


def test_real_push_of_listed_skus_changes_exactly_those(dagbag: Any, drifted_shop: str, stocksync_dsn: str,
                                                        wms: Any) -> None:
    from airflow.utils.state import DagRunState

    before = {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)}
    available = {item["sku"]: item["available"] for item in wms.admin.items()}
    drifted = sorted(sku for sku in before if before[sku] != available[sku])
    listed = drifted[:3]
    assert len(listed) == 3

    dag_run = push(dagbag, {"dry_run": False, "skus": listed, "freeze_mode": "apply"})

    assert dag_run.state == DagRunState.SUCCESS
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)}
    assert {sku for sku in after if after[sku] != before[sku]} == set(listed)
    assert all(after[sku] == available[sku] for sku in listed)
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert run["status"] == "applied" and run["changed"] == 3 and run["extracted"] == 40
    assert active_freezes(drifted_shop) == []


def test_single_sku_push(dagbag: Any, drifted_shop: str, stocksync_dsn: str, wms: Any) -> None:
    from airflow.utils.state import DagRunState

    before = {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)}
    available = {item["sku"]: item["available"] for item in wms.admin.items()}
    sku = next(s for s in sorted(before) if before[s] != available[s])

    dag_run = push(dagbag, {"dry_run": False, "skus": [sku], "freeze_mode": "none"})

    assert dag_run.state == DagRunState.SUCCESS
    after = {s: q for s, q, _, _ in stock_fingerprint(drifted_shop)}
    assert after == {**before, sku: available[sku]}


@pytest.mark.parametrize(("conf", "message"), [
    ({"dry_run": False, "override_guardrails": True, "override_reason": ""},
     "override_guardrails is true but override_reason is empty"),
    ({"dry_run": False, "skus": ["SKU-0000001", "NOT-A-SKU"]}, "NOT-A-SKU (not in the WMS snapshot)"),
])
def test_misuse_fails_fast_with_a_clear_message(dagbag: Any, drifted_shop: str, stocksync_dsn: str,
                                                wms: Any, webhook: Any,
                                                conf: dict[str, Any], message: str) -> None:
    from airflow.utils.state import DagRunState

    fingerprint = stock_fingerprint(drifted_shop)

    dag_run = push(dagbag, conf)

    assert dag_run.state == DagRunState.FAILED
    assert stock_fingerprint(drifted_shop) == fingerprint
    assert active_freezes(drifted_shop) == []
    alerts = [e["body"] for e in webhook.received() if e["body"].get("run_id") == dag_run.run_id]
    assert alerts and any(message in alert["error"] for alert in alerts), [a["error"] for a in alerts]
    assert all(alert["try_number"] == "1" for alert in alerts)  # no retries for a misuse


def test_override_lets_a_tripped_guardrail_through_and_records_why(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                                     wms: Any) -> None:
    from airflow.utils.state import DagRunState

    shop_in_line_with_wms(clean_shop, wms, 40, 32, drift_share=0.0)
    # a stock take found a whole aisle empty: 25% of SKUs drop to zero (guardrail: at most 5%)
    wms.admin.set_items([{"sku": f"SKU-{n:07d}", "on_hand": 0, "non_usable": 0, "allocated": 0}
                         for n in range(1, 11)])
    stopped = push(dagbag, {"dry_run": False})
    assert stopped.state == DagRunState.FAILED
    assert "max_zeroed_share" in pipeline.get_run(stocksync_dsn, stopped.run_id)["error"]
    fingerprint = stock_fingerprint(clean_shop)

    # the preview ops ask for before overriding: the plan is written, and says a real run would stop
    preview = push(dagbag, {"dry_run": True})
    assert preview.state == DagRunState.SUCCESS
    previewed = pipeline.get_run(stocksync_dsn, preview.run_id)
    assert previewed["status"] == "dry_run" and stock_fingerprint(clean_shop) == fingerprint
    assert active_freezes(clean_shop) == []
    plan_dir = Path(previewed["report_path"]).parent
    plan_html = (plan_dir / "plan.html").read_text()
    assert "A real run with these parameters would stop" in plan_html and "max_zeroed_share" in plan_html
    with (plan_dir / "plan.csv").open(newline="") as fh:
        planned = {row["sku"]: int(row["new"]) for row in csv.DictReader(fh)}
    assert len(planned) == 40 and all(planned[f"SKU-{n:07d}"] == 0 for n in range(1, 11))
    assert {g["name"] for g in previewed["guardrails"] if not g["success"]} >= {"max_zeroed_share"}

    reason = "stock take 2026-11-22: aisle 4 written off after water damage"
    dag_run = push(dagbag, {"dry_run": False, "override_guardrails": True, "override_reason": reason})

    assert dag_run.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    assert run["override_reason"] == reason and run["status"] == "applied"
    zeroed = {sku: qty for sku, qty, _, _ in stock_fingerprint(clean_shop) if sku <= "SKU-0000010"}
    assert set(zeroed.values()) == {0}
    report = Path(run["report_path"]).read_text()
    assert reason in report and "FAILED (overridden)" in report


def test_a_run_id_already_used_by_the_nightly_sync_is_refused(dagbag: Any, drifted_shop: str, stocksync_dsn: str,
                                                              wms: Any,
                                                               webhook: Any) -> None:
    """Airflow keeps run ids unique per DAG only, and ops can choose one over REST: a push whose
    run id is the nightly's fails at once and leaves the nightly's record, stock and freeze alone."""
    from datetime import datetime, timezone

    from airflow.utils.state import DagRunState

    same_time = datetime(2026, 11, 20, 3, 0, tzinfo=timezone.utc)  # dag.test names both runs manual__<this>
    nightly = fresh_dag(dagbag, "inventory_nightly_sync").test(run_after=same_time, logical_date=same_time)
    assert nightly.state == DagRunState.SUCCESS
    nightly_record = pipeline.get_run(stocksync_dsn, nightly.run_id)
    fingerprint = stock_fingerprint(drifted_shop)
    wms.admin.set_items([{"sku": "SKU-0000001", "on_hand": 7, "non_usable": 0, "allocated": 0}])

    pushed = fresh_dag(dagbag, "inventory_full_push").test(run_after=same_time, logical_date=same_time,
                                                           run_conf={"dry_run": False})

    assert pushed.run_id == nightly.run_id
    assert pushed.state == DagRunState.FAILED
    assert pipeline.get_run(stocksync_dsn, nightly.run_id) == nightly_record  # not reopened, not re-closed
    assert stock_fingerprint(drifted_shop) == fingerprint
    assert active_freezes(drifted_shop) == []
    alerts = [e["body"] for e in webhook.received()
              if e["body"].get("run_id") == pushed.run_id and e["body"].get("dag_id") == "inventory_full_push"]
    assert alerts and all(alert["try_number"] == "1" for alert in alerts), alerts
    assert any("already used by a stock sync run of DAG 'inventory_nightly_sync'" in alert["error"]
               for alert in alerts), [alert["error"] for alert in alerts]


def test_a_long_sku_list_is_judged_by_the_guardrails(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A list of SKUs from a bad file is as dangerous as a bad feed: from
    `push_guardrails_min_skus` listed SKUs on, the shares are judged over the list."""
    from airflow.utils.state import DagRunState

    shop_in_line_with_wms(clean_shop, wms, 40, 33, drift_share=0.0)
    listed = [f"SKU-{n:07d}" for n in range(1, 13)]
    wms.admin.set_items([{"sku": sku, "on_hand": 0, "non_usable": 0, "allocated": 0} for sku in listed])
    fingerprint = stock_fingerprint(clean_shop)
    monkeypatch.setenv("STOCKSYNC_PUSH_GUARDRAILS_MIN_SKUS", "10")

    stopped = push(dagbag, {"dry_run": False, "skus": listed})

    assert stopped.state == DagRunState.FAILED
    assert "max_zeroed_share" in pipeline.get_run(stocksync_dsn, stopped.run_id)["error"]
    assert stock_fingerprint(clean_shop) == fingerprint and active_freezes(clean_shop) == []

    # a short list is a deliberate fix of a few SKUs: not judged by shares
    monkeypatch.setenv("STOCKSYNC_PUSH_GUARDRAILS_MIN_SKUS", "100")
    fixed = push(dagbag, {"dry_run": False, "skus": listed[:3]})
    assert fixed.state == DagRunState.SUCCESS
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(clean_shop)}
    assert [after[sku] for sku in listed[:3]] == [0, 0, 0]
    assert all(after[sku] > 0 for sku in listed[3:])
