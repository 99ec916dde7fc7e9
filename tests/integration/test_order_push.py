"""The order push (`include/stocksync/sync/order_push.py`) against the real shop DB and WMS service:
oldest first, the WMS's receipt time recorded, never counted twice (crash between send and record,
a timeout whose request arrived, a re-run), refusals held with the WMS's reason and one alert per
batch, re-queue, cancellations.

The shop and stocksync's own tables are in two databases (tests/conftest.py): the push reads and
acknowledges the shop's orders through the shop port (`port`), and records its pushes, refusals,
runs and alerts in stocksync's database (`stocksync_dsn`)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from include.stocksync.config.settings import PROJECT_ROOT, load_settings
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import order_push
from include.stocksync.wms.sources.base import WmsUnavailable
from tests.conftest import TEST_TOKEN, shop_in_line_with_wms
from tests.integration.loop_helpers import (
    loop_settings,
    order_lines,
    orders,
    orders_cli_env,
    orders_client,
    place,
    wms_allocated,
    wms_post,
)

SKUS = 30


@pytest.fixture
def shop(clean_shop: str, wms: Any) -> str:
    """The shop's database, its catalog in line with the WMS."""
    return shop_in_line_with_wms(clean_shop, wms, SKUS, seed=11, drift_share=0.0)


@pytest.fixture
def port(shop: str) -> ShopPort:
    """That shop behind the shop port, as the push reaches it."""
    return open_shop(shop)


def in_stock(dsn: str, n: int, at_least: int = 5) -> list[str]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT sku FROM shop.stock WHERE qty >= %s ORDER BY sku LIMIT %s",
                            (at_least, n)).fetchall()
    assert len(rows) == n
    return [r[0] for r in rows]


def expected_allocation(before: dict[str, int], lines: list[list[tuple[str, int]]]) -> dict[str, int]:
    after = dict(before)
    for order in lines:
        for sku, qty in order:
            after[sku] += qty
    return after


def test_push_sends_oldest_first_and_records_the_wms_receipt_time(shop: str, port: ShopPort, stocksync_dsn: str,
                                                                   wms: Any) -> None:
    skus = in_stock(shop, 6)
    before = wms_allocated(wms)
    ids = [place(shop, [(skus[i % 6], 1), (skus[(i + 1) % 6], 2)]) for i in range(7)]
    settings = loop_settings(order_batch_size=3)
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="push-1", shop=port)
    assert (result.sent, result.repeated, result.acknowledged, result.batches) == (7, 0, 7, 3)
    assert result.dead_lettered == []
    assert wms_allocated(wms) == expected_allocation(before, list(order_lines(shop).values()))
    shop_orders = orders(shop)
    with connect(stocksync_dsn) as conn:
        pushes = dict(conn.execute("SELECT order_id, acknowledged_at FROM stocksync.order_pushes").fetchall())
    acks = [shop_orders[i]["acknowledged_at"] for i in ids]
    assert all(a is not None for a in acks)
    assert acks == sorted(acks)  # oldest first
    assert {i: shop_orders[i]["acknowledged_at"] for i in ids} == pushes
    # the WMS's feed carries the same instant for the order's changes: the recorded time is its clock
    oldest = wms_post_get(wms, "/v1/stock/feed", {"after_seq": 2**40})["oldest_after_seq"]
    feed = wms_post_get(wms, "/v1/stock/feed", {"after_seq": oldest, "limit": 10000})
    order_times = {e["changed_at"] for e in feed["events"] if e["reason"] == "order"}
    assert {a.isoformat() for a in acks} <= {datetime.fromisoformat(t).isoformat() for t in order_times}
    # nothing left: a second run sends nothing
    again = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="push-2", shop=port)
    assert (again.sent, again.repeated, again.batches) == (0, 0, 0)


def wms_post_get(wms: Any, path: str, params: dict[str, Any]) -> Any:
    from tests.integration.loop_helpers import wms_session

    response = wms_session().get(f"{wms.url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_rerun_after_a_lost_record_counts_once_and_keeps_the_original_time(shop: str, port: ShopPort,
                                                                           stocksync_dsn: str, wms: Any) -> None:
    skus = in_stock(shop, 3)
    before = wms_allocated(wms)
    ids = [place(shop, [(sku, 2)]) for sku in skus]
    settings = loop_settings()
    order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="first", shop=port)
    first = {i: orders(shop)[i]["acknowledged_at"] for i in ids}
    # the records are lost (both databases restored from a backup): the orders look unsent again
    with connect(shop) as conn:
        conn.execute("UPDATE shop.orders SET wms_acknowledged_at = NULL")
        conn.commit()
    with connect(stocksync_dsn) as conn:
        conn.execute("TRUNCATE stocksync.order_pushes")
        conn.commit()
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="second", shop=port)
    assert (result.sent, result.repeated, result.acknowledged) == (0, 3, 3)
    assert {i: orders(shop)[i]["acknowledged_at"] for i in ids} == first  # the WMS's original receipt
    assert wms_allocated(wms) == expected_allocation(before, list(order_lines(shop).values()))


def test_timeout_whose_request_arrived_is_counted_once(shop: str, port: ShopPort, stocksync_dsn: str,
                                                       wms: Any) -> None:
    skus = in_stock(shop, 2)
    before = wms_allocated(wms)
    order_id = place(shop, [(skus[0], 3), (skus[1], 1)])
    wms.admin.faults(timeout_ms=1500)  # the WMS handles the order, then answers too late
    settings = loop_settings(order_attempts=2)
    with pytest.raises(WmsUnavailable):
        order_push.push_orders(stocksync_dsn, orders_client(wms, timeout=0.4), settings, run_id="slow", shop=port)
    assert orders(shop)[order_id]["acknowledged_at"] is None
    counted = expected_allocation(before, [[(skus[0], 3), (skus[1], 1)]])
    assert wms_allocated(wms) == counted  # it arrived, once, although we sent it twice
    wms.admin.clear_faults()
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="after", shop=port)
    assert (result.sent, result.repeated, result.acknowledged) == (0, 1, 1)
    assert orders(shop)[order_id]["acknowledged_at"] is not None
    assert wms_allocated(wms) == counted
    with connect(stocksync_dsn) as conn:
        answers = conn.execute("SELECT answers FROM stocksync.order_pushes WHERE order_id = %s", (order_id,)).fetchone()
    assert answers is not None and answers[0] == [200]


def test_crash_between_send_and_record_counts_once(shop: str, port: ShopPort, stocksync_dsn: str, wms: Any) -> None:
    """A real process is killed (SIGKILL) in the middle of a batch: the WMS has orders the shop has
    not recorded as acknowledged. The next run records them from the original receipts."""
    skus = in_stock(shop, 10)
    before = wms_allocated(wms)
    ids = [place(shop, [(skus[i % 10], 1)]) for i in range(12)]
    wms.admin.faults(latency_ms=150)
    env = {**orders_cli_env(shop, stocksync_dsn), "STOCKSYNC_WMS_TOKEN": TEST_TOKEN, "STOCKSYNC_WMS_URL": wms.url,
           "STOCKSYNC_LOOP__ORDER_BATCH_SIZE": "50"}
    process = subprocess.Popen([sys.executable, "-m", "include.stocksync", "orders", "push", "--run-id", "crash"],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while sum(wms_allocated(wms).values()) - sum(before.values()) < 3:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    wms.admin.clear_faults()
    received = sum(wms_allocated(wms).values()) - sum(before.values())
    assert received >= 3
    assert all(o["acknowledged_at"] is None for o in orders(shop).values())  # the batch was never recorded
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id="after-crash",
                                    shop=port)
    assert result.repeated == received and result.sent == 12 - received
    assert all(orders(shop)[i]["acknowledged_at"] is not None for i in ids)
    assert wms_allocated(wms) == expected_allocation(before, list(order_lines(shop).values()))


def test_refusals_are_held_with_the_reason_alerted_once_per_batch_and_requeued(shop: str, port: ShopPort,
                                                                                stocksync_dsn: str, wms: Any) -> None:
    skus = in_stock(shop, 4)
    # a product the shop sells but the WMS does not know, and a SKU the WMS has too little of
    with connect(shop) as conn:
        conn.execute("INSERT INTO shop.products (sku, name) VALUES ('LOCAL-ONLY-1', 'not in the WMS')")
        conn.execute("INSERT INTO shop.stock (sku, qty) VALUES ('LOCAL-ONLY-1', 10)")
        conn.commit()
    short = skus[3]
    good = place(shop, [(skus[0], 1)])
    unknown = place(shop, [("LOCAL-ONLY-1", 1)])
    good2 = place(shop, [(skus[1], 1)])
    too_many = place(shop, [(short, 2)])
    item = wms.admin.items([short])[0]
    wms.admin.set_items([{"sku": short, "allocated": item["on_hand"] - item["non_usable"] - 1}])  # 1 left
    alerts: list[tuple[int, list[Any]]] = []
    settings = loop_settings(order_batch_size=2)
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="refusals",
                                    on_dead_letters=lambda batch, letters: alerts.append((batch, letters)), shop=port)
    assert (result.sent, result.acknowledged) == (2, 2)
    assert {d.order_id: d.http_status for d in result.dead_lettered} == {unknown: 422, too_many: 409}
    assert [(b, [letter.order_id for letter in ls]) for b, ls in alerts] == [(1, [unknown]), (2, [too_many])]
    held = {row["order_id"]: row for row in order_push.dead_letters(stocksync_dsn)}
    assert "LOCAL-ONLY-1" in held[unknown]["reason"] and "insufficient stock" in held[too_many]["reason"]
    assert orders(shop)[good]["acknowledged_at"] and orders(shop)[good2]["acknowledged_at"]
    # not retried forever: the next run leaves them alone
    again = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="refusals-2", shop=port)
    assert (again.sent, again.dead_lettered, again.batches) == (0, [], 0)
    # the warehouse receives stock; ops re-queue the short order: it goes through
    wms.admin.set_items([{"sku": short, "allocated": 0}])
    assert order_push.requeue(stocksync_dsn, order_ids=[too_many], by="test") == [too_many]
    third = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="refusals-3", shop=port)
    assert (third.sent, third.dead_lettered) == (1, [])
    assert orders(shop)[too_many]["acknowledged_at"] is not None
    assert set(r["order_id"] for r in order_push.dead_letters(stocksync_dsn)) == {unknown}
    # the command line lists and re-queues too
    listing = subprocess.run([sys.executable, "-m", "include.stocksync", "orders", "dead-letters"],
                             cwd=PROJECT_ROOT, env=orders_cli_env(shop, stocksync_dsn), capture_output=True, text=True,
                             check=True)
    assert f'"order_id": {unknown}' in listing.stdout
    subprocess.run([sys.executable, "-m", "include.stocksync", "orders", "requeue", "--all"], cwd=PROJECT_ROOT,
                   env=orders_cli_env(shop, stocksync_dsn), capture_output=True, text=True, check=True)
    assert order_push.dead_letters(stocksync_dsn) == []


def test_cancellations_after_sending_release_the_allocation_once(shop: str, port: ShopPort, stocksync_dsn: str,
                                                                 wms: Any) -> None:
    skus = in_stock(shop, 3)
    before = wms_allocated(wms)
    kept = place(shop, [(skus[0], 1)])
    cancelled = place(shop, [(skus[1], 2)])
    shipped = place(shop, [(skus[2], 1)])
    never_sent = place(shop, [(skus[0], 1)])
    with connect(shop) as conn:  # cancelled before it was ever sent: nothing to tell the WMS
        conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = %s", (never_sent,))
        conn.commit()
    settings = loop_settings()
    order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="send", shop=port)
    wms_post(wms, "/_admin/ship", {"keys": [order_push.order_key(settings, shipped)]})
    with connect(shop) as conn:
        conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = ANY (%s)", ([cancelled, shipped],))
        conn.commit()
    result = order_push.push_cancellations(stocksync_dsn, orders_client(wms), settings, run_id="cancel", shop=port)
    assert (result.cancels_sent, result.cancels_refused) == (1, 1)
    after = wms_allocated(wms)
    assert after[skus[1]] == before[skus[1]]            # released
    assert after[skus[0]] == before[skus[0]] + 1        # the kept order; the never-sent one was never there
    assert after[skus[2]] == before[skus[2]]            # shipped: allocation left with the goods
    with connect(stocksync_dsn) as conn:
        rows = dict(conn.execute("SELECT order_id, cancel_refused FROM stocksync.order_pushes "
                                 "WHERE cancelled_at IS NOT NULL OR cancel_refused IS NOT NULL").fetchall())
    assert set(rows) == {cancelled, shipped} and rows[cancelled] is None and "shipped" in rows[shipped]
    again = order_push.push_cancellations(stocksync_dsn, orders_client(wms), settings, run_id="cancel-2", shop=port)
    assert (again.cancels_sent, again.cancels_refused) == (0, 0)
    assert wms_allocated(wms) == after
    assert orders(shop)[kept]["acknowledged_at"] is not None


def recorded_alerts(dsn: str, run_id: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute("SELECT kind, task_id, delivered, payload FROM stocksync.alerts WHERE run_id = %s "
                            "ORDER BY alert_id", (run_id,)).fetchall()


def test_refused_orders_and_a_feed_gap_are_recorded_as_what_they_were(shop: str, port: ShopPort, stocksync_dsn: str,
                                                                        wms: Any, webhook: Any, airflow: Any) -> None:
    """The alerts table names a dead-letter alert and a feed-gap alert by their kind and keeps the
    payload the webhook received (not `task_failed` with an empty payload)."""
    from include.stocksync.ops.notices import post_alert
    from include.stocksync.sync import intraday
    from tests.integration.loop_helpers import full_sync, wms_session

    settings = loop_settings()
    conn_id, endpoint = settings.alerts_conn_id, settings.alerts_endpoint
    held, gap_run = f"held-{uuid.uuid4().hex[:8]}", f"gap-{uuid.uuid4().hex[:8]}"  # alerts outlive a reset
    with connect(shop) as conn:
        conn.execute("INSERT INTO shop.products (sku, name) VALUES ('LOCAL-ONLY-2', 'not in the WMS')")
        conn.execute("INSERT INTO shop.stock (sku, qty) VALUES ('LOCAL-ONLY-2', 10)")
        conn.commit()
    unknown = place(shop, [("LOCAL-ONLY-2", 1)])

    def alert(batch: int, letters: list[order_push.DeadLetter]) -> None:
        post_alert(stocksync_dsn, order_push.dead_letter_alert(dag_id="orders_to_wms", run_id=held, batch=batch,
                                                      letters=letters),
                   conn_id=conn_id, endpoint=endpoint, run_id=held, dag_id="orders_to_wms", task_id="send_orders")

    order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id=held, on_dead_letters=alert, shop=port)
    ((kind, task_id, delivered, payload),) = recorded_alerts(stocksync_dsn, held)
    assert (kind, task_id, delivered) == ("order_dead_letters", "send_orders", True)
    assert [o["order_id"] for o in payload["orders"]] == [unknown] and "LOCAL-ONLY-2" in payload["orders"][0]["reason"]
    (sent,) = [e["body"] for e in webhook.received() if e["body"].get("run_id") == held]
    assert_sent_is_recorded(sent, payload)

    full_sync(shop, wms, "night-before-gap", store=stocksync_dsn)
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": wms.admin.items()[0]["sku"], "on_hand": 4}]})
    wms_post(wms, "/_admin/feed-retention", {"events": 0})
    try:
        intraday.open_intraday(stocksync_dsn, run_id=gap_run, settings=settings)
        read = intraday.read_feed(stocksync_dsn, run_id=gap_run, session=wms_session(), base_url=wms.url)
    finally:
        wms_post(wms, "/_admin/feed-retention", {"events": 1_000_000})
        intraday.close(stocksync_dsn, run_id=gap_run, shop=port)
    assert read["state"] == "gap"
    post_alert(stocksync_dsn, read["alert"], conn_id=conn_id, endpoint=endpoint, run_id=gap_run,
               dag_id="inventory_intraday_sync", task_id="read_change_feed")
    ((kind, task_id, delivered, payload),) = recorded_alerts(stocksync_dsn, gap_run)
    assert (kind, task_id, delivered) == ("feed_gap", "read_change_feed", True)
    assert payload["gap"] == read["alert"]["gap"] and payload["text"].startswith("stocksync: gap in the WMS change")
    (sent,) = [e["body"] for e in webhook.received() if e["body"].get("run_id") == gap_run]
    assert_sent_is_recorded(sent, payload)


def assert_sent_is_recorded(sent: dict[str, Any], recorded: dict[str, Any]) -> None:
    """The chat channel gets the recorded alert as chat-safe text: the same fields (these hold no
    markup to neutralise), the text followed by the report's link or why there is none (this test
    server has no public [api] base_url), never a local path."""
    assert {k: v for k, v in sent.items() if k not in ("text", "report_url")} == {
        k: v for k, v in recorded.items() if k not in ("text", "report_url", "report")}
    assert sent["text"].startswith(recorded["text"]) and "base_url" in sent["text"][len(recorded["text"]):]
    assert sent.get("report_url") is None and "/" not in str(sent.get("report") or "")


def push_run(dsn: str, run_id: str) -> dict[str, Any]:
    with connect(dsn) as conn:
        row = conn.execute("SELECT sent, acknowledged, rate_limited, waited_seconds, receipts_corrected, stopped, "
                           "error FROM stocksync.order_push_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return dict(zip(("sent", "acknowledged", "rate_limited", "waited_seconds", "receipts_corrected", "stopped",
                     "error"), row, strict=True))


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_a_rate_limited_wms_is_paced_by_its_retry_after_and_one_run_sends_everything(shop: str, port: ShopPort,
                                                                                      stocksync_dsn: str, wms: Any,
                                                                                      form: str) -> None:
    """The WMS takes 4 orders a second and answers 429 with Retry-After past that (whole seconds, or
    an HTTP-date): one run waits what it is told, never gives up, and sends all 13 orders, each once."""
    skus = in_stock(shop, 10)
    before = wms_allocated(wms)
    ids = [place(shop, [(skus[i % 10], 1)]) for i in range(13)]
    wms.admin.faults(orders_per_window=4, orders_window_s=1, retry_after_form=form)

    result = order_push.push_orders(stocksync_dsn, orders_client(wms),
                                    loop_settings(order_attempts=3, order_batch_size=5), run_id=f"paced-{form}",
                                    shop=port)

    assert (result.sent, result.acknowledged, result.stopped) == (13, 13, None)
    assert all(orders(shop)[i]["acknowledged_at"] is not None for i in ids)
    assert wms_allocated(wms) == expected_allocation(before, list(order_lines(shop).values()))
    waits = result.rate_limited
    assert waits >= 3  # 13 orders at 4 a window: at least three waits
    # what the WMS asked for: "1" second each, or a date 1 to 2 s ahead (an HTTP-date has whole seconds)
    if form == "seconds":
        assert result.waited_seconds == waits * 1.0
    else:
        assert waits * 1.0 < result.waited_seconds <= waits * 2.0
    recorded = push_run(stocksync_dsn, f"paced-{form}")
    assert (recorded["sent"], recorded["rate_limited"], recorded["stopped"]) == (13, waits, None)
    assert recorded["waited_seconds"] == pytest.approx(result.waited_seconds)


def test_a_rate_limit_past_the_runs_budget_stops_cleanly_and_the_next_run_goes_on(shop: str, port: ShopPort,
                                                                                   stocksync_dsn: str,
                                                                                   wms: Any) -> None:
    """The WMS asks us to wait 30 s; the run has 5 s left: it stops without failing, records why,
    and the next run sends the rest (each order counted once)."""
    skus = in_stock(shop, 8)
    before = wms_allocated(wms)
    ids = [place(shop, [(sku, 1)]) for sku in skus]
    wms.admin.faults(orders_per_window=3, orders_window_s=30)
    settings = loop_settings(order_deadline_seconds=5)

    first = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="budget-1", shop=port)

    assert (first.sent, first.rate_limited, first.waited_seconds) == (3, 1, 0.0)
    assert first.stopped and "rate limited after 3 orders" in first.stopped
    assert "loop.order_deadline_seconds" in first.stopped and "next run sends the rest" in first.stopped
    recorded = push_run(stocksync_dsn, "budget-1")
    assert (recorded["stopped"], recorded["rate_limited"], recorded["error"]) == (first.stopped, 1, None)
    assert sum(orders(shop)[i]["acknowledged_at"] is None for i in ids) == 5
    wms.admin.clear_faults()
    second = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="budget-2", shop=port)
    assert (second.sent, second.repeated, second.stopped) == (5, 0, None)
    assert all(orders(shop)[i]["acknowledged_at"] is not None for i in ids)
    assert wms_allocated(wms) == expected_allocation(before, list(order_lines(shop).values()))


@pytest.mark.parametrize(("offset", "why"), [(6 * 3600, "later than the WMS's answer arrived"),
                                             (-6 * 3600, "before the order was created")])
def test_a_receipt_time_that_is_not_sane_is_corrected_and_recorded(shop: str, port: ShopPort, stocksync_dsn: str,
                                                                  wms: Any, offset: float, why: str) -> None:
    """Receipts stating a time six hours ahead (the order would stay uncounted: stock under-stated)
    or six hours before the order existed (counted before any snapshot could include it: oversell):
    the acknowledgement is the moment the answer arrived plus clock_skew_seconds, with the WMS's
    time and the reason kept; a receipt within the skew is recorded as given."""
    skus = in_stock(shop, 3)
    odd = [place(shop, [(skus[0], 1)]), place(shop, [(skus[1], 1)])]
    skew = timedelta(seconds=load_settings().clock_skew_seconds)
    wms.admin.faults(received_at_offset_s=offset)
    before = datetime.now(timezone.utc)
    result = order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id=f"odd-{offset}",
                                    shop=port)
    after = datetime.now(timezone.utc)
    assert (result.acknowledged, result.receipts_corrected) == (2, 2)
    assert push_run(stocksync_dsn, f"odd-{offset}")["receipts_corrected"] == 2
    for order_id in odd:
        acknowledged_at, wms_received_at, note = pushed(stocksync_dsn, order_id)
        assert before + skew <= acknowledged_at <= after + skew
        assert orders(shop)[order_id]["acknowledged_at"] == acknowledged_at
        assert before + timedelta(seconds=offset) <= wms_received_at <= after + timedelta(seconds=offset)
        assert why in note and "clock_skew_seconds" in note

    fine = place(shop, [(skus[2], 1)])
    wms.admin.faults(received_at_offset_s=-skew.total_seconds() / 2)  # a WMS clock behind ours, within the skew
    before = datetime.now(timezone.utc)
    again = order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id=f"fine-{offset}",
                                   shop=port)
    after = datetime.now(timezone.utc)
    assert (again.acknowledged, again.receipts_corrected) == (1, 0)
    acknowledged_at, wms_received_at, note = pushed(stocksync_dsn, fine)
    assert before - skew / 2 <= acknowledged_at <= after - skew / 2 and (wms_received_at, note) == (None, None)


def pushed(dsn: str, order_id: int) -> tuple[Any, ...]:
    with connect(dsn) as conn:
        row = conn.execute("SELECT acknowledged_at, wms_received_at, receipt_time_note FROM stocksync.order_pushes "
                           "WHERE order_id = %s", (order_id,)).fetchone()
    assert row is not None
    return tuple(row)
