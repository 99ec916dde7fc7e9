"""The loop's alerts through the real DAGs (`dag.test()`) and the real webhook receiver: one alert per
batch of refused orders and the re-queue parameter of `orders_to_wms`; one alert per feed gap from
`inventory_intraday_sync`, and one per stall of the feed, then a walk of it out of order, with
stale events and stopped by `feed_max_events`, going on in the next run; a night whose drift is far
above the trend alerts from the nightly."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from include.stocksync.store.db import connect
from include.stocksync.sync import drift, order_push, pipeline
from tests.conftest import fresh_dag, shop_in_line_with_wms
from tests.integration.loop_helpers import loop_settings, orders, place, shop_stock, truth, wms_post

pytestmark = pytest.mark.slow


def run(dagbag: Any, dag_id: str, conf: dict[str, Any] | None = None) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = fresh_dag(dagbag, dag_id).test(run_conf=conf)
    assert dag_run.state == DagRunState.SUCCESS, (dag_id, dag_run.run_id)
    return dag_run


def alerts(webhook: Any, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e["body"] for e in webhook.received()
            if e["body"].get("run_id") == run_id and e["body"].get("kind") == kind]


def test_refused_orders_alert_once_per_batch_and_are_requeued_by_parameter(dagbag: Any, clean_shop: str,
                                                                           stocksync_dsn: str, wms: Any,
                                                                           webhook: Any) -> None:
    dsn = shop_in_line_with_wms(clean_shop, wms, 20, seed=31, drift_share=0.0)
    with connect(dsn) as conn:
        sku = conn.execute("SELECT sku FROM shop.stock WHERE qty >= 4 ORDER BY sku LIMIT 1").fetchone()[0]
    good = place(dsn, [(sku, 1)])
    short = place(dsn, [(sku, 2)])
    item = wms.admin.items([sku])[0]
    wms.admin.set_items([{"sku": sku, "allocated": item["on_hand"] - item["non_usable"] - 2}])  # room for 2
    first = run(dagbag, "orders_to_wms")
    sent = alerts(webhook, first.run_id, "order_dead_letters")
    assert len(sent) == 1 and [o["order_id"] for o in sent[0]["orders"]] == [short]
    assert "insufficient stock" in sent[0]["orders"][0]["reason"]
    with connect(stocksync_dsn) as conn:
        recorded = conn.execute("SELECT task_id, delivered FROM stocksync.alerts WHERE run_id = %s",
                                (first.run_id,)).fetchall()
    assert recorded == [("send_orders", True)]
    assert orders(dsn)[good]["acknowledged_at"] is not None and orders(dsn)[short]["acknowledged_at"] is None
    wms.admin.set_items([{"sku": sku, "allocated": 0}])  # stock arrives
    second = run(dagbag, "orders_to_wms")  # held: not sent again by itself
    assert orders(dsn)[short]["acknowledged_at"] is None and alerts(webhook, second.run_id, "order_dead_letters") == []
    run(dagbag, "orders_to_wms", {"requeue_order_ids": [short]})
    assert orders(dsn)[short]["acknowledged_at"] is not None
    assert order_push.dead_letters(stocksync_dsn) == []


def test_a_feed_gap_alerts_once(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any, webhook: Any) -> None:
    dsn = shop_in_line_with_wms(clean_shop, wms, 20, seed=32, drift_share=0.0)
    run(dagbag, "inventory_nightly_sync")
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": "SKU-0000001", "on_hand": 4}]})
    wms_post(wms, "/_admin/feed-retention", {"events": 0})
    try:
        first = run(dagbag, "inventory_intraday_sync")
        second = run(dagbag, "inventory_intraday_sync")
    finally:
        wms_post(wms, "/_admin/feed-retention", {"events": 1_000_000})
    assert pipeline.get_run(stocksync_dsn, first.run_id)["status"] == "gap"
    assert pipeline.get_run(stocksync_dsn, second.run_id)["status"] == "gap"
    assert len(alerts(webhook, first.run_id, "feed_gap")) == 1
    assert alerts(webhook, second.run_id, "feed_gap") == []
    assert pipeline.get_run(stocksync_dsn, first.run_id)["report_path"]
    run(dagbag, "inventory_nightly_sync")
    assert shop_stock(dsn) == truth(dsn, wms)


def test_a_night_far_above_the_trend_alerts(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                            wms: Any, webhook: Any) -> None:
    shop_in_line_with_wms(clean_shop, wms, 200, seed=33, drift_share=0.6)
    settings = loop_settings()
    today = date.today()
    with connect(stocksync_dsn) as conn:  # three quiet nights before
        for n in range(1, 4):
            pipeline.open_run(stocksync_dsn, run_id=f"past-{n}", dag_id="inventory_nightly_sync", settings=settings)
            conn.execute("INSERT INTO stocksync.drift_history (run_id, dag_id, night, skus_checked, skus_off, "
                         "units_over, units_under) VALUES (%s, 'inventory_nightly_sync', %s, 200, 2, 3, 1)",
                         (f"past-{n}", today - timedelta(days=n)))
        conn.commit()
    night = run(dagbag, "inventory_nightly_sync")
    row = drift.recorded(stocksync_dsn, night.run_id)
    assert row is not None and row["alert"] and row["trend_skus_off"] == 2 and row["skus_off"] > 50
    sent = alerts(webhook, night.run_id, "drift")
    assert len(sent) == 1 and sent[0]["skus_off"] == row["skus_off"]
    nights = drift.nights(stocksync_dsn)
    assert [n["night"] for n in nights][:4] == [today - timedelta(days=k) for k in range(4)]
    # the next night is in line: no alert
    quiet = run(dagbag, "inventory_nightly_sync")
    assert drift.recorded(stocksync_dsn, quiet.run_id)["skus_off"] == 0
    assert alerts(webhook, quiet.run_id, "drift") == []


def test_a_stalled_feed_alerts_once_then_a_bounded_out_of_order_walk_goes_on(dagbag: Any, clean_shop: str,
                                                                             stocksync_dsn: str, wms: Any,
                                                                             webhook: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from include.stocksync.sync import intraday

    dsn = shop_in_line_with_wms(clean_shop, wms, 20, seed=34, drift_share=0.0)
    run(dagbag, "inventory_nightly_sync")
    with connect(stocksync_dsn) as conn:
        start = intraday.feed_position(conn, loop_settings())
    with connect(dsn) as conn:
        skus = [r[0] for r in conn.execute("SELECT sku FROM shop.stock ORDER BY sku LIMIT 4")]
    assert start is not None
    for sku, on_hand in ((skus[0], 5), (skus[1], 3), (skus[0], -2), (skus[2], 4), (skus[3], 1)):  # start+1..+5
        wms_post(wms, "/_admin/adjust", {"items": [{"sku": sku, "on_hand": on_hand}]})
    wms.admin.faults(feed_stall_after_seq=start)
    first = run(dagbag, "inventory_intraday_sync")
    second = run(dagbag, "inventory_intraday_sync")
    assert [pipeline.get_run(stocksync_dsn, r.run_id)["status"] for r in (first, second)] == ["stalled", "stalled"]
    sent = alerts(webhook, first.run_id, "feed_stalled")
    assert len(sent) == 1 and f"gave nothing after {start}" in sent[0]["text"]
    assert alerts(webhook, second.run_id, "feed_stalled") == []
    # it moves again, out of order with each page repeating the event before it; the walk bound is
    # shortened for the test (feed_max_events 3 of the 5 events, pages of 2)
    monkeypatch.setenv("STOCKSYNC_LOOP__FEED_MAX_EVENTS", "3")
    monkeypatch.setenv("STOCKSYNC_LOOP__FEED_PAGE_SIZE", "2")
    wms.admin.faults(feed_reverse_pages=True, feed_replay_events=1)
    third = run(dagbag, "inventory_intraday_sync")
    record = pipeline.get_run(stocksync_dsn, third.run_id)
    assert record["status"] == "applied"
    assert [w["kind"] for w in record["warnings"]] == ["feed_truncated", "feed_skipped_events"]
    assert intraday.feed_run(stocksync_dsn, third.run_id)["through_seq"] == start + 3
    fourth = run(dagbag, "inventory_intraday_sync")
    feed = intraday.feed_run(stocksync_dsn, fourth.run_id)
    assert (feed["after_seq"], feed["through_seq"], feed["stopped"]) == (start + 3, start + 5, None)
    assert shop_stock(dsn) == truth(dsn, wms)
    assert alerts(webhook, third.run_id, "feed_stalled") == alerts(webhook, fourth.run_id, "feed_stalled") == []


def test_a_drift_night_is_the_shops_local_date(stocksync_dsn: str) -> None:
    """A nightly at 00:30 summer time in London starts at 23:30 UTC the day before: its drift night
    is the shop's date (shop_timezone), so each local night keeps a date of its own across the
    daylight-saving changes (in UTC two local nights shared one date and the page hid one)."""
    from datetime import datetime, timezone

    settings = loop_settings().model_copy(update={"shop_timezone": "Europe/London"})
    for run_id, started in (("night-before-summer-time", "2027-03-27T00:30:00+00:00"),  # 00:30 GMT
                            ("night-in-summer-time", "2027-03-29T23:30:00+00:00")):   # 00:30 BST on the 30th
        pipeline.open_run(stocksync_dsn, run_id=run_id, dag_id="inventory_nightly_sync", settings=settings)
        with connect(stocksync_dsn) as conn:
            conn.execute("UPDATE stocksync.sync_runs SET started_at = %s WHERE run_id = %s",
                         (datetime.fromisoformat(started).astimezone(timezone.utc), run_id))
            row = drift.record(conn, run_id=run_id, dag_id="inventory_nightly_sync", settings=settings, checked=0)
            conn.commit()
        assert str(row["night"]) == {"night-before-summer-time": "2027-03-27",
                                     "night-in-summer-time": "2027-03-30"}[run_id]
