"""End-to-end `dag.test()` runs of `inventory_nightly_sync` on the real shop DB and WMS service."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devstack.demo_seed import seed_demo
from include.stocksync.store.db import connect
from include.stocksync.sync.pipeline import get_run
from tests.conftest import active_freezes, fresh_dag, stock_fingerprint, try_place_order

pytestmark = pytest.mark.slow

UNSENT_STATUSES = {"placed", "paid", "processing"}


def run_nightly(dagbag: Any, conf: dict[str, Any] | None = None) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = fresh_dag(dagbag, "inventory_nightly_sync").test(run_conf=conf)
    assert dag_run.state in (DagRunState.SUCCESS, DagRunState.FAILED)
    return dag_run


def expected_stock(dsn: str, wms_items: list[dict[str, Any]], watermark: datetime) -> dict[str, tuple[int, bool]]:
    """Rule §3.1 computed here in Python from the raw rows: sku -> (new qty, clamped)."""
    now = datetime.now(timezone.utc)
    with connect(dsn) as conn:
        rows = conn.execute("SELECT o.status, o.created_at, o.wms_acknowledged_at, l.sku, l.qty "
                            "FROM shop.orders o JOIN shop.order_lines l USING (order_id)").fetchall()
    unsent: dict[str, int] = defaultdict(int)
    for status, created_at, acknowledged_at, sku, qty in rows:
        recent = created_at >= now - timedelta(hours=24)
        not_counted = acknowledged_at is None or acknowledged_at > watermark
        if status in UNSENT_STATUSES and recent and not_counted:
            unsent[sku] += qty
    result = {}
    for item in wms_items:
        raw = item["available"] - unsent[item["sku"]]
        result[item["sku"]] = (max(0, raw), raw < 0)
    return result


@pytest.fixture
def seeded(clean_shop: str, stocksync_dsn: str, wms: Any) -> dict[str, Any]:
    """The demo shop (`dsn`, the shop's database) and stocksync's own database (`store`)."""
    seed = seed_demo(clean_shop, wms.admin, skus=40, seed=3, orders=30)
    assert seed.orders_acknowledged > 0 and seed.orders_unsent > 0 and seed.drifted > 0
    return {"dsn": clean_shop, "store": stocksync_dsn, "seed": seed}


def alerts_for(webhook: Any, run_id: str) -> list[dict[str, Any]]:
    return [entry["body"] for entry in webhook.received() if entry["body"].get("run_id") == run_id]


def test_nightly_sync_end_to_end(dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any) -> None:
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    before = {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)}
    wms_items = wms.admin.items()

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(store, dag_run.run_id)
    expected = expected_stock(dsn, wms_items, run["orders_counted_until"])
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)}
    assert after == {sku: qty for sku, (qty, _) in expected.items()}
    # the seeded scenario really exercises the rule: drift repaired and orders subtracted
    assert sum(1 for sku in after if after[sku] != before[sku]) > 0
    assert any(expected[item["sku"]][0] != item["available"] for item in wms_items)

    with connect(store) as conn:
        audit = {row[0]: row[1:] for row in conn.execute(
            "SELECT sku, old_qty, wms_available, adjustment, new_qty, outcome FROM stocksync.sku_outcomes(%s)",
            (dag_run.run_id,)).fetchall()}
    with connect(dsn) as conn:
        seqs = dict(conn.execute("SELECT sku, wms_seq FROM shop.stock").fetchall())
    assert set(audit) == set(expected)
    outcomes: Counter[str] = Counter()
    wms_by_sku = {item["sku"]: item for item in wms_items}
    for sku, (old_qty, wms_available, adjustment, new_qty, outcome) in audit.items():
        qty, clamped = expected[sku]
        assert old_qty == before[sku]
        assert wms_available == wms_by_sku[sku]["available"]
        assert new_qty == qty
        assert wms_available - adjustment == qty or (clamped and qty == 0)
        want = "clamped" if clamped else ("unchanged" if qty == before[sku] else "changed")
        assert outcome == want, sku
        assert seqs[sku] == wms_by_sku[sku]["seq"]
        outcomes[outcome] += 1

    assert run["status"] == "applied"
    assert run["extracted"] == 40 and run["valid"] == 40
    assert run["changed"] == outcomes["changed"]
    assert run["unchanged"] == outcomes["unchanged"]
    assert run["clamped"] == outcomes["clamped"]
    assert run["stale"] == 0 and run["duplicate"] == 0
    assert run["dq_success"] is True
    assert run["freeze_seconds"] > 0  # full mode: checkout was closed for the run
    assert set(run["stage_seconds"]) >= {"extract", "validate", "merge", "load"}
    report = Path(run["report_path"])
    assert report.exists() and dag_run.run_id in report.read_text()
    assert active_freezes(dsn) == []
    assert alerts_for(webhook, dag_run.run_id) == []
    assert recorded_alerts(store, dag_run.run_id) == []
    assert "No alerts were sent." in Path(run["report_path"]).read_text()

    # after the run, checkout works again and decrements the synced number
    sku = max(after, key=lambda s: after[s])
    order_id, refusal = try_place_order(dsn, [(sku, 1)])
    assert refusal is None and order_id is not None
    assert {s: q for s, q, _, _ in stock_fingerprint(dsn)}[sku] == after[sku] - 1


def test_checkout_refused_while_frozen(dagbag: Any, seeded: dict[str, Any], wms: Any) -> None:
    from airflow.utils.state import DagRunState

    dsn = seeded["dsn"]
    sku = max(stock_fingerprint(dsn), key=lambda row: row[1])[0]
    wms.admin.faults(latency_ms=400)  # a slow WMS keeps the run inside its freeze for a while
    attempts: list[tuple[int | None, str | None]] = []
    done = threading.Event()

    def shopper() -> None:
        while not done.is_set():
            attempts.append(try_place_order(dsn, [(sku, 1)]))
            time.sleep(0.05)

    thread = threading.Thread(target=shopper)
    thread.start()
    try:
        dag_run = run_nightly(dagbag)
    finally:
        done.set()
        thread.join()

    assert dag_run.state == DagRunState.SUCCESS
    refusals = [reason for _, reason in attempts if reason]
    frozen = [reason for reason in refusals if reason.startswith("checkout is frozen")]
    assert frozen, f"no checkout was refused during the freeze ({len(attempts)} attempts)"
    assert "Please try again after" in frozen[0]
    assert all(r.startswith(("checkout is frozen", "insufficient stock")) for r in refusals), refusals
    assert active_freezes(dsn) == []
    order_id, refusal = try_place_order(dsn, [(sku, 1)])
    assert refusal is None and order_id is not None


def assert_failed_cleanly(seeded: dict[str, Any], dag_run: Any, fingerprint: list[Any], webhook: Any,
                          failed_task: str) -> dict[str, Any]:
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    assert dag_run.state == DagRunState.FAILED
    assert stock_fingerprint(dsn) == fingerprint  # byte-for-byte unchanged
    assert active_freezes(dsn) == []
    run = get_run(store, dag_run.run_id)
    assert run["status"] == "failed"
    assert run["freeze_seconds"] is not None and run["freeze_seconds"] > 0
    alerts = alerts_for(webhook, dag_run.run_id)
    assert any(alert["task_id"] == failed_task for alert in alerts), alerts
    assert all(alert["dag_id"] == "inventory_nightly_sync" for alert in alerts)
    with connect(store) as conn:
        audit_rows = conn.execute("SELECT count(*) FROM stocksync.sku_audit WHERE run_id = %s",
                                  (dag_run.run_id,)).fetchone()
    assert audit_rows == (0,)
    return run


def test_wms_down_fails_after_retries_and_releases_freeze(dagbag: Any, seeded: dict[str, Any], wms: Any,
                                                           webhook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.shop.test")  # the alert links the run page there
    dsn = seeded["dsn"]
    fingerprint = stock_fingerprint(dsn)
    wms.admin.faults(fail_status=500, fail_count=-1)

    dag_run = run_nightly(dagbag)

    run = assert_failed_cleanly(seeded, dag_run, fingerprint, webhook, "extract_wms_counts")
    assert "WMS unreachable after 3 attempts" in run["error"]
    alert = next(a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "extract_wms_counts")
    assert alert["try_number"] == "3"  # first try + 2 retries
    assert "WMS unreachable" in alert["error"]
    assert "report" not in alert and Path(run["report_path"]).exists()  # the webhook never gets the local path
    assert alert["report_url"] == \
        f"https://airflow.shop.test/stocksync/runs/inventory_nightly_sync/{quote(dag_run.run_id, safe='')}"
    # the alert is recorded with the run and listed in its report (DESIGN §3.7: alerts sent)
    recorded = recorded_alerts(seeded["store"], dag_run.run_id)
    assert [(a["task_id"], a["try_number"], a["delivered"]) for a in recorded] == [("extract_wms_counts", 3, True)]
    assert "WMS unreachable" in recorded[0]["error"] and recorded[0]["target"] == "stocksync_alerts/alerts"
    report = Path(run["report_path"]).read_text()
    alerts_section = report.split("<h2>Alerts sent</h2>", 1)[1]
    assert "extract_wms_counts" in alerts_section and "WMS unreachable" in alerts_section


def recorded_alerts(dsn: str, run_id: str) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT task_id, try_number, target, delivered, delivery_error, error "
                           "FROM stocksync.alerts WHERE run_id = %s ORDER BY alert_id", (run_id,)).fetchall()


def test_an_alert_the_webhook_does_not_take_is_recorded_as_undelivered(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from devstack.local_stack import free_port

    store = seeded["store"]
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "port": free_port(), "schema": "http"}))  # nobody listens
    wms.admin.faults(corrupt=[{"sku": "SKU-0000003", "field": "available", "value": -5}])

    dag_run = run_nightly(dagbag)

    recorded = recorded_alerts(store, dag_run.run_id)
    assert [(a["task_id"], a["delivered"]) for a in recorded] == [("validate_counts", False)]
    assert recorded[0]["delivery_error"] and "quantity_non_negative" in recorded[0]["error"]
    assert alerts_for(webhook, dag_run.run_id) == []
    report = Path(get_run(store, dag_run.run_id)["report_path"]).read_text()
    assert "NO: " in report.split("<h2>Alerts sent</h2>", 1)[1]


@pytest.mark.parametrize(("fault", "failed_check"), [
    ({"corrupt": [{"sku": "SKU-0000003", "field": "available", "value": -5}]},
     "quantity_non_negative[available]"),
    ({"duplicate_sku": "SKU-0000004"}, "sku_unique[sku]"),
], ids=["negative-quantity", "duplicated-sku"])
def test_bad_page_fails_validation(dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any,
                                   fault: dict[str, Any], failed_check: str) -> None:
    dsn = seeded["dsn"]
    fingerprint = stock_fingerprint(dsn)
    wms.admin.faults(**fault)

    dag_run = run_nightly(dagbag)

    run = assert_failed_cleanly(seeded, dag_run, fingerprint, webhook, "validate_counts")
    assert run["dq_success"] is False
    with connect(seeded["store"]) as conn:
        failed = [row[0] for row in conn.execute(
            "SELECT check_name FROM stocksync.dq_results WHERE run_id = %s AND NOT success", (dag_run.run_id,))]
    assert failed_check in failed
    assert failed_check in run["error"]
    report = Path(run["report_path"]).read_text()
    assert failed_check in report and "FAILED" in report


def test_a_newly_listed_product_gets_its_stock_row(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                   wms: Any) -> None:
    """A catalog product without a stock row yet is not `unknown`: the sync creates its row
    with the WMS figure; a SKU the catalog does not have stays out."""
    from airflow.utils.state import DagRunState

    from tests.conftest import shop_in_line_with_wms

    shop_in_line_with_wms(clean_shop, wms, 40, 9, drift_share=0.0)
    with connect(clean_shop) as conn:
        conn.execute("DELETE FROM shop.stock WHERE sku IN ('SKU-0000007', 'SKU-0000008')")
        conn.commit()
    available = {item["sku"]: item["available"] for item in wms.admin.items()}

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)
    assert run["unknown"] == 0 and run["changed"] >= 1
    with connect(clean_shop) as conn:
        rows = dict(conn.execute("SELECT sku, qty FROM shop.stock WHERE sku IN ('SKU-0000007', 'SKU-0000008')"))
    with connect(stocksync_dsn) as conn:
        audit = conn.execute("SELECT sku, old_qty, new_qty, outcome FROM stocksync.sku_outcomes(%s) "
                             "WHERE sku IN ('SKU-0000007', 'SKU-0000008') ORDER BY sku", (dag_run.run_id,)).fetchall()
    assert rows == {"SKU-0000007": available["SKU-0000007"], "SKU-0000008": available["SKU-0000008"]}
    assert [(sku, old) for sku, old, _, _ in audit] == [("SKU-0000007", 0), ("SKU-0000008", 0)]
    assert {outcome for *_, outcome in audit} <= {"changed", "unchanged"}
    assert all(new == available[sku] for sku, _, new, _ in audit)
