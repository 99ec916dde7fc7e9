"""The intraday sync (`include/stocksync/sync/intraday.py`) on the real shop DB and WMS service: the
change feed after the last applied sequence, validated, applied through the nightly's atomic,
seq-guarded apply with the order adjustment; never a freeze; gaps recorded (not guessed) and
alerted once; skipped while a full sync runs.

The shop and stocksync's own tables are in two databases (tests/conftest.py): each test's `dsn` is
the shop's, `store` stocksync's (runs, feed position and walks, audit, alerts); the runs reach the
shop through its port."""

from __future__ import annotations

from typing import Any

import pytest

from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import intraday as intraday_sync
from include.stocksync.sync import order_push, pipeline
from include.stocksync.sync.validate import ValidationFailed
from tests.conftest import shop_in_line_with_wms
from tests.integration.loop_helpers import (
    full_sync,
    intraday,
    loop_settings,
    orders_client,
    place,
    shop_stock,
    truth,
    wms_post,
)

SKUS = 40


@pytest.fixture
def synced(clean_shop: str, stocksync_dsn: str, wms: Any) -> str:
    """A shop drifted from the WMS, then repaired by a full sync: the feed's position is set.
    The shop's database (stocksync's is `stocksync_dsn`)."""
    dsn = shop_in_line_with_wms(clean_shop, wms, SKUS, seed=21, drift_share=0.3)
    run = full_sync(dsn, wms, "nightly-0", store=stocksync_dsn)
    assert run["status"] == "applied"
    assert shop_stock(dsn) == truth(dsn, wms)
    return dsn


def skus_with_stock(dsn: str, n: int) -> list[str]:
    with connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT sku FROM shop.stock WHERE qty >= 6 ORDER BY sku LIMIT %s", (n,))]


def position(store: str) -> int | None:
    """The feed's position, in stocksync's database `store`."""
    with connect(store) as conn:
        return intraday_sync.feed_position(conn, loop_settings())


def adjusted(dsn: str, store: str, wms: Any, n: int, on_hand: int = 1) -> tuple[list[str], int]:
    """`n` SKUs with stock in the shop at `dsn`, each given `on_hand` more in the WMS (one event
    each, start+1..start+n), and the position `start` (in `store`) before them."""
    skus = skus_with_stock(dsn, n)
    start = position(store)
    assert start is not None
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": s, "on_hand": on_hand} for s in skus]})
    return skus, start


def test_intraday_applies_the_wms_changes_with_the_order_adjustment(synced: str, stocksync_dsn: str,
                                                                   wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus = skus_with_stock(dsn, 6)
    start = position(store)
    # the WMS receives goods and finds damage; shoppers order, some orders reach the WMS, some not yet
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": skus[0], "on_hand": 7}, {"sku": skus[1], "non_usable": 2}]})
    place(dsn, [(skus[2], 2)])
    order_push.push_orders(store, orders_client(wms), loop_settings(), run_id="push", shop=open_shop(dsn))
    place(dsn, [(skus[3], 1), (skus[2], 1)])  # placed after the push: the WMS has not counted it
    before = shop_stock(dsn)
    summary = intraday(dsn, wms, "intraday-1", store=store)
    assert summary["read"]["state"] == "staged"
    assert summary["apply"]["status"] == "applied"
    assert shop_stock(dsn) == truth(dsn, wms)
    after = shop_stock(dsn)
    assert after[skus[0]] == before[skus[0]] + 7 and after[skus[1]] == before[skus[1]] - 2
    assert after[skus[2]] == before[skus[2]] and after[skus[3]] == before[skus[3]]  # orders: counted once
    run = pipeline.get_run(store, "intraday-1")
    assert (run["dag_id"], run["status"], run["freeze_mode"]) == ("inventory_intraday_sync", "applied", "none")
    assert run["snapshot_id"].startswith(f"wms-feed:{start}-")
    feed = intraday_sync.feed_run(store, "intraday-1")
    assert feed is not None and feed["after_seq"] == start and feed["through_seq"] == feed["head_seq"]
    assert feed["skus"] == 3 and feed["events"] == 3  # adjust x2, one order line
    assert position(store) == feed["through_seq"]
    with connect(dsn) as conn:  # checkout was never frozen
        assert conn.execute("SELECT count(*) FROM shop.checkout_freezes").fetchone() == (0,)
    with connect(store) as conn:
        audit = dict(conn.execute("SELECT sku, outcome FROM stocksync.sku_outcomes('intraday-1')"))
    assert set(audit) == {skus[0], skus[1], skus[2]}
    assert run["report_path"] and "intraday-1" in open(run["report_path"]).read()
    # nothing new: an empty run, the position stays
    empty = intraday(dsn, wms, "intraday-2", store=store)
    assert empty["read"]["state"] == "empty" and empty["apply"] is None
    assert pipeline.get_run(store, "intraday-2")["status"] == "applied"
    assert position(store) == feed["through_seq"]


def test_a_gap_is_recorded_alerted_once_and_repaired_by_the_next_full_sync(synced: str, stocksync_dsn: str,
                                                                          wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus = skus_with_stock(dsn, 2)
    start = position(store)
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": skus[0], "on_hand": 5}]})
    wms_post(wms, "/_admin/feed-retention", {"events": 0})  # the WMS forgets its changes
    before = shop_stock(dsn)
    first = intraday(dsn, wms, "gap-1", store=store)
    assert first["read"]["state"] == "gap" and "no longer goes back" in first["read"]["gap"]
    assert first["read"]["alert"] is not None and first["read"]["alert"]["kind"] == "feed_gap"
    assert (first["validate"], first["merge"], first["apply"]) == (None, None, None)
    run = pipeline.get_run(store, "gap-1")
    assert run["status"] == "gap" and "gap in the WMS change feed" in run["error"]
    assert shop_stock(dsn) == before  # nothing guessed
    intraday_sync.mark_gap_alerted(store, "gap-1")
    second = intraday(dsn, wms, "gap-2", store=store)
    assert second["read"]["state"] == "gap" and second["read"]["alert"] is None  # one alert per gap
    assert position(store) == start
    # the nightly repairs it and the feed goes on from its snapshot
    wms_post(wms, "/_admin/feed-retention", {"events": 1_000_000})
    full_sync(dsn, wms, "nightly-1", store=store)
    assert shop_stock(dsn) == truth(dsn, wms)
    assert position(store) > start
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": skus[1], "on_hand": 3}]})
    assert intraday(dsn, wms, "after-gap", store=store)["read"]["state"] == "staged"
    assert shop_stock(dsn) == truth(dsn, wms)


def test_sequences_that_jump_or_go_back_are_gaps(synced: str, stocksync_dsn: str, wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    _, start = adjusted(dsn, store, wms, 3)
    wms.admin.faults(feed_skip_seqs=[start + 2])
    jumped = intraday(dsn, wms, "jump", store=store)
    assert jumped["read"]["state"] == "gap" and f"jump from {start + 1} to {start + 3}" in jumped["read"]["gap"]
    wms.admin.clear_faults()
    whole = intraday(dsn, wms, "no-jump", store=store)
    assert whole["read"]["feed"]["through_seq"] == start + 3  # the same events, whole
    wms.admin.reset(SKUS, 21)  # the WMS restarts from its generated state: its newest seq is behind ours
    back = intraday(dsn, wms, "went-back", store=store)
    assert back["read"]["state"] == "gap" and "reset or restored" in back["read"]["gap"]


def test_skipped_while_a_full_sync_is_running_and_without_a_position(clean_shop: str, stocksync_dsn: str,
                                                                     wms: Any) -> None:
    dsn, store = shop_in_line_with_wms(clean_shop, wms, SKUS, seed=22, drift_share=0.0), stocksync_dsn
    none_yet = intraday(dsn, wms, "no-position", store=store)
    assert none_yet["read"]["state"] == "skipped"
    assert pipeline.get_run(store, "no-position")["status"] == "skipped"
    full_sync(dsn, wms, "nightly-0", store=store)
    settings = loop_settings()
    pipeline.open_run(store, run_id="nightly-running", dag_id="inventory_nightly_sync", settings=settings)
    busy = intraday(dsn, wms, "while-nightly", store=store)
    assert busy["open"]["status"] == "skipped" and "nightly-running" in busy["open"]["reason"]
    run = pipeline.get_run(store, "while-nightly")
    assert run["status"] == "skipped" and "inventory_nightly_sync" in run["error"]
    assert intraday_sync.feed_run(store, "while-nightly")["skipped"]
    pipeline.release_freeze(store, run_id="nightly-running", dag_id="inventory_nightly_sync",
                            shop=open_shop(dsn))  # it ends (failed)
    assert intraday(dsn, wms, "after-nightly", store=store)["open"]["status"] == "running"


def test_a_delta_that_fails_validation_writes_nothing(synced: str, stocksync_dsn: str, wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus = skus_with_stock(dsn, 2)
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": s, "on_hand": 2} for s in skus]})
    wms.admin.faults(corrupt=[{"sku": skus[0], "field": "available", "value": -5}])
    before = shop_stock(dsn)
    with pytest.raises(ValidationFailed):
        intraday(dsn, wms, "bad-delta", store=store)
    assert shop_stock(dsn) == before
    assert pipeline.get_run(store, "bad-delta")["status"] == "failed"
    wms.admin.clear_faults()
    assert intraday(dsn, wms, "good-delta", store=store)["apply"]["status"] == "applied"  # the same delta, read again
    assert shop_stock(dsn) == truth(dsn, wms)


def feed_alerts(store: str) -> list[tuple[str, str]]:
    """(run, subject) of every recorded alert of a stalled feed, oldest first (stocksync's database `store`)."""
    with connect(store) as conn:
        return conn.execute("SELECT run_id, subject FROM stocksync.alerts WHERE kind = 'feed_stalled' "
                            "ORDER BY alert_id").fetchall()


def test_a_stalled_feed_is_recorded_and_alerted_once_per_stall(synced: str, stocksync_dsn: str, wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus, start = adjusted(dsn, store, wms, 3)
    wms.admin.faults(feed_stall_after_seq=start)  # the feed gives nothing, its head is start+3
    before = shop_stock(dsn)
    with connect(store) as conn:  # alerts outlive the history's reset; this test's run ids are reused by each run
        conn.execute("DELETE FROM stocksync.alerts WHERE kind = 'feed_stalled'")
        conn.commit()
    first = intraday(dsn, wms, "stall-1", store=store)
    assert first["read"]["state"] == "stalled" and first["read"]["alerted"] is True
    run = pipeline.get_run(store, "stall-1")
    assert run["status"] == "stalled" and f"gave nothing after {start}" in run["error"]
    assert f"gave nothing after {start}" in open(run["report_path"]).read()
    assert intraday_sync.feed_run(store, "stall-1")["stalled"] and shop_stock(dsn) == before
    assert feed_alerts(store) == [("stall-1", "feed_stalled:stall-1")]
    # while it lasts: recorded on every run, no second alert, even when some changes come through
    assert intraday(dsn, wms, "stall-2", store=store)["read"]["state"] == "stalled"
    wms.admin.faults(feed_stall_after_seq=start + 2)
    partly = intraday(dsn, wms, "stall-3", store=store)
    assert partly["apply"]["status"] == "applied" and partly["read"]["feed"]["through_seq"] == start + 2
    assert pipeline.get_run(store, "stall-3")["status"] == "applied"
    assert intraday_sync.feed_run(store, "stall-3")["stall_since"] == "stall-1"
    assert [w["kind"] for w in pipeline.get_run(store, "stall-3")["warnings"]] == ["feed_stalled"]
    assert feed_alerts(store) == [("stall-1", "feed_stalled:stall-1")]
    assert position(store) == start + 2
    # it recovers: the rest comes through; a new stall later alerts again
    wms.admin.clear_faults()
    recovered = intraday(dsn, wms, "recovered", store=store)
    assert recovered["read"]["feed"]["through_seq"] == start + 3 and recovered["read"]["feed"]["stalled"] is None
    assert shop_stock(dsn) == truth(dsn, wms)
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": skus[0], "on_hand": 2}]})
    wms.admin.faults(feed_stall_after_seq=start + 3)
    assert intraday(dsn, wms, "stall-again", store=store)["read"]["state"] == "stalled"
    assert feed_alerts(store) == [("stall-1", "feed_stalled:stall-1"), ("stall-again", "feed_stalled:stall-again")]


def test_out_of_order_stale_and_repeated_events_apply_what_is_new(synced: str, stocksync_dsn: str, wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus = skus_with_stock(dsn, 3)
    start = position(store)
    assert start is not None
    # one SKU changes three times, the others once: start+1..start+5
    for sku, on_hand in ((skus[0], 4), (skus[1], 2), (skus[0], -1), (skus[2], 3), (skus[0], 2)):
        wms_post(wms, "/_admin/adjust", {"items": [{"sku": sku, "on_hand": on_hand}]})
    # pages in descending order, each starting with the two events already read, one event twice
    wms.admin.faults(feed_reverse_pages=True, feed_replay_events=2, feed_repeat_seqs=[start + 4])
    summary = intraday(dsn, wms, "hostile-order", loop_settings(feed_page_size=4), store=store)
    assert summary["read"]["state"] == "staged" and summary["apply"]["status"] == "applied"
    assert shop_stock(dsn) == truth(dsn, wms)
    feed = intraday_sync.feed_run(store, "hostile-order")
    # every page after the first serves the two events at or below its after_seq again: stale
    assert (feed["through_seq"], feed["events"], feed["skus"], feed["duplicate_events"]) == (start + 5, 5, 3, 1)
    assert feed["stale_events"] == len(feed["stale_seqs"]) > 0 and max(feed["stale_seqs"]) <= start + 4
    warnings = pipeline.get_run(store, "hostile-order")["warnings"]
    assert [w["kind"] for w in warnings] == ["feed_skipped_events"]
    assert f"{feed['stale_events']} stale events skipped" in warnings[0]["note"]


def test_a_walk_stopped_by_feed_max_events_is_recorded_and_the_next_run_goes_on(synced: str, stocksync_dsn: str,
                                                                                wms: Any) -> None:
    dsn, store = synced, stocksync_dsn
    skus, start = adjusted(dsn, store, wms, 5, on_hand=3)
    settings = loop_settings(feed_max_events=3, feed_page_size=2)
    first = intraday(dsn, wms, "bounded-1", settings, store=store)
    assert first["apply"]["status"] == "applied"
    feed = intraday_sync.feed_run(store, "bounded-1")
    assert (feed["through_seq"], feed["events"]) == (start + 4, 4)  # whole pages: the second reaches 3
    assert feed["stopped"] and "feed_max_events (3)" in feed["stopped"]
    run = pipeline.get_run(store, "bounded-1")
    assert [w["kind"] for w in run["warnings"]] == ["feed_truncated"]
    # the Stock sync page's line and the run report say so
    from include.stocksync.runs import runview

    assert f"the next run goes on from sequence {start + 4}" in runview.story(run, base="").sentence
    assert "feed_max_events (3)" in open(run["report_path"]).read()
    assert position(store) == start + 4
    second = intraday(dsn, wms, "bounded-2", settings, store=store)
    feed2 = intraday_sync.feed_run(store, "bounded-2")
    assert (feed2["after_seq"], feed2["through_seq"], feed2["events"], feed2["stopped"]) == (start + 4, start + 5, 1,
                                                                                            None)
    assert second["apply"]["status"] == "applied" and shop_stock(dsn) == truth(dsn, wms)
    with connect(store) as conn:  # every SKU changed by exactly one of the two runs
        audited = conn.execute("SELECT run_id, sku FROM stocksync.sku_audit WHERE run_id IN "
                               "('bounded-1', 'bounded-2') ORDER BY sku").fetchall()
    assert sorted(sku for _, sku in audited) == sorted(skus)
    assert {run_id for run_id, _ in audited} == {"bounded-1", "bounded-2"}


def refused_read(store: str, run_id: str, page: dict[str, Any]) -> BaseException:
    """An intraday run opened in `store`, its read of a feed answering `page` (on every request):
    the error the read raised (the test fails if it raised none)."""
    import json

    from tests.fault_servers import Scripted, ScriptedHttpServer
    from tests.integration.loop_helpers import wms_session

    server = ScriptedHttpServer([Scripted(200, json.dumps(page).encode())])
    try:
        intraday_sync.open_intraday(store, run_id=run_id, settings=loop_settings())
        with pytest.raises(Exception) as caught:
            intraday_sync.read_feed(store, run_id=run_id, session=wms_session(), base_url=server.url)
    finally:
        server.stop()
    return caught.value


FEED_TIME_CASES = [
    ("watermark-in-year-10000-in-utc", {"taken_at": "now", "orders_counted_until": "9999-12-31T23:59:59-14:00"},
     "not a plausible time"),
    ("watermark-after-taken-at", {"taken_at": "now", "orders_counted_until": "2999-01-01T00:00:00Z"},
     "after snapshot_taken_at"),
    ("watermark-in-the-future-without-taken-at", {"orders_counted_until": "2999-01-01T00:00:00Z"},
     "is in the future"),
    ("watermark-not-a-time-without-taken-at", {"orders_counted_until": "not a time"}, "not an ISO-8601 timestamp"),
    ("watermark-without-zone-without-taken-at", {"orders_counted_until": "2026-01-01T00:00:00"}, "no timezone"),
    ("watermark-at-the-epoch-without-taken-at", {"orders_counted_until": "1970-01-01T00:00:00Z"},
     "not a plausible time"),
]


@pytest.mark.parametrize(("header", "named"), [c[1:] for c in FEED_TIME_CASES], ids=[c[0] for c in FEED_TIME_CASES])
def test_an_empty_deltas_times_get_a_snapshots_checks(synced: str, stocksync_dsn: str, header: dict[str, str],
                                                     named: str) -> None:
    """A feed page with nothing new still gives the run its watermark: its times are refused as a
    snapshot's header would be (with or without `taken_at`), the run fails permanently naming the
    field, and its teardown closes it (nothing unstorable was recorded)."""
    from datetime import datetime, timezone

    from include.stocksync.domain.errors import is_permanent

    at = position(stocksync_dsn)
    assert at is not None
    now = datetime.now(timezone.utc).isoformat()
    page = {"events": [], "head_seq": at, "next_after_seq": at,
            **{k: (now if v == "now" else v) for k, v in header.items()}}
    run_id = f"intraday-times-{header.get('orders_counted_until', '')[:4]}-{len(header)}-{named[:6]}"
    caught = refused_read(stocksync_dsn, run_id, page)
    assert is_permanent(caught) and "orders_counted_until" in str(caught), caught
    assert named in str(caught)
    intraday_sync.close(stocksync_dsn, run_id=run_id, shop=open_shop(synced))
    run = pipeline.get_run(stocksync_dsn, run_id)
    assert run["status"] == "failed" and run["closed_at"] is not None and run["orders_counted_until"] is None
    assert position(stocksync_dsn) == at


@pytest.mark.parametrize("case", ["page-watermark", "no-watermark", "request-time-setting", "stalled"])
def test_a_walk_cut_short_never_counts_an_order_whose_change_it_did_not_read(synced: str, stocksync_dsn: str,
                                                                           case: str) -> None:
    """The walk reads the SKU's record at P+1 and stops there (feed_max_events 1), or stalls (the next
    page brings nothing new), before P+2: the allocation of an order the WMS acknowledged a second
    ago. The record does not include that order, so the shop must take it off: the truth is the
    record's figure less the order. A walk that reached the head could take its start as the
    watermark; this one cannot (that counted the order as in the figure: 2 units oversold). The last
    page's own orders_counted_until is the watermark whatever watermark_source says; without one no
    order of the window counts as counted."""
    import json
    from datetime import datetime, timedelta, timezone

    from tests.fault_servers import Scripted, ScriptedHttpServer
    from tests.integration.loop_helpers import wms_session

    dsn, store = synced, stocksync_dsn
    sku = skus_with_stock(dsn, 1)[0]
    at = position(store)
    assert at is not None
    order_id = place(dsn, [(sku, 2)])
    with connect(dsn) as conn:
        conn.execute("UPDATE shop.orders SET wms_acknowledged_at = now() - interval '1 second' WHERE order_id = %s",
                     (order_id,))
        conn.commit()
    now = datetime.now(timezone.utc)
    record = shop_stock(dsn)[sku] + 2 + 5  # a receipt of 5; the order's 2 not yet allocated at P+1
    event = {"seq": at + 1, "sku": sku, "on_hand": record, "non_usable": 0, "allocated": 0, "available": record,
             "changed_at": now.isoformat(), "reason": "receipt"}
    page = {"events": [event], "head_seq": at + 2, "next_after_seq": at + 1, "taken_at": now.isoformat()}
    if case in ("page-watermark", "request-time-setting"):
        page["orders_counted_until"] = (now - timedelta(seconds=5)).isoformat()  # before the order's acknowledgement
    settings = loop_settings(feed_page_size=1, feed_max_events=1)
    if case == "request-time-setting":
        settings = settings.model_copy(update={"watermark_source": "request_time"})
    script = [Scripted(200, json.dumps(page).encode())]
    if case == "stalled":
        settings = loop_settings()
        script.append(Scripted(200, json.dumps({"events": [], "head_seq": at + 2, "next_after_seq": at + 1,
                                                "taken_at": now.isoformat()}).encode()))
    server = ScriptedHttpServer(script)
    run_id = f"intraday-cut-short-{case}"
    try:
        intraday_sync.run_once(store, settings, run_id=run_id, session=wms_session(), base_url=server.url,
                               shop=open_shop(dsn))
    finally:
        server.stop()
    feed = intraday_sync.feed_run(store, run_id)
    assert feed and (feed["stopped"] or feed["stalled"]), feed
    assert pipeline.get_run(store, run_id)["status"] == "applied"
    assert shop_stock(dsn)[sku] == record - 2


def test_a_feed_page_with_changes_but_no_taken_at_is_refused_in_the_feeds_words(synced: str,
                                                                                stocksync_dsn: str) -> None:
    """A delta is staged like a snapshot, which must say when it was taken: a page with changes and
    no taken_at is refused by the walk, naming the feed's own field (it failed in staging, naming a
    snapshot_taken_at the feed does not have). An empty delta needs none (it stages nothing)."""

    from include.stocksync.domain.errors import is_permanent
    from include.stocksync.wms.errors import WmsContractError

    at = position(stocksync_dsn)
    assert at is not None
    sku = skus_with_stock(synced, 1)[0]
    event = {"seq": at + 1, "sku": sku, "on_hand": 9, "non_usable": 0, "allocated": 0, "available": 9,
             "changed_at": "2026-12-07T00:00:00+00:00", "reason": "receipt"}
    refused = refused_read(stocksync_dsn, "intraday-no-taken-at",
                           {"events": [event], "head_seq": at + 1, "next_after_seq": at + 1})
    assert isinstance(refused, WmsContractError) and is_permanent(refused)
    assert "change feed" in str(refused) and "taken_at" in str(refused) and "snapshot_taken_at" not in str(refused)
    assert position(stocksync_dsn) == at
