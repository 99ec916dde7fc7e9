"""The WMS simulator's change log and order lifecycle, over HTTP against the real service:
dense sequences in order, paging, the per-page `orders_counted_until`, retention (410), the skip
fault, cancellations (once; 404 unknown; 409 shipped), shipping and relative adjustments. Then our
walk of that feed (`ChangeFeedSource`) under the simulator's feed faults: a feed that stalls, events
out of order on a page, stale and repeated events, what is no sequence."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.conftest import TEST_TOKEN


def client(wms: Any) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    return s


def feed(wms: Any, after: int, limit: int = 1000) -> requests.Response:
    return client(wms).get(f"{wms.url}/v1/stock/feed", params={"after_seq": after, "limit": limit}, timeout=10)


def post(wms: Any, path: str, body: Any = None, key: str | None = None) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client(wms).post(f"{wms.url}{path}", json=body, headers=headers, timeout=10)


def test_feed_pages_dense_sequences_and_watermark(wms: Any) -> None:
    wms.admin.reset(10, 1)
    head = feed(wms, 10**9).json()
    start = head["oldest_after_seq"]
    assert head["head_seq"] == start and head["events"] == []
    two_lines = {"order_ref": "a", "lines": [{"sku": "SKU-0000001", "qty": 1}, {"sku": "SKU-0000002", "qty": 1}]}
    assert post(wms, "/v1/orders", two_lines, "a").status_code == 201
    post(wms, "/_admin/adjust", {"items": [{"sku": "SKU-0000003", "on_hand": 5}]})
    page = feed(wms, start, limit=1).json()
    assert [e["seq"] for e in page["events"]] == [start + 1] and page["next_after_seq"] == start + 1
    assert page["head_seq"] == start + 3
    # the page ends inside the order: its second line is later, so the order is not counted yet
    receipt_time = datetime.fromisoformat(page["events"][0]["changed_at"])
    assert datetime.fromisoformat(page["orders_counted_until"]) < receipt_time
    rest = feed(wms, start + 1).json()
    assert [(e["seq"], e["reason"]) for e in rest["events"]] == [(start + 2, "order"), (start + 3, "adjust")]
    assert datetime.fromisoformat(rest["orders_counted_until"]) >= receipt_time  # caught up: counted
    event = rest["events"][1]
    assert event["available"] == event["on_hand"] - event["non_usable"] - event["allocated"]


def test_retention_gap_and_skip_fault(wms: Any) -> None:
    wms.admin.reset(10, 1)
    start = feed(wms, 10**9).json()["oldest_after_seq"]
    post(wms, "/_admin/adjust", {"items": [{"sku": f"SKU-000000{i}", "on_hand": 1} for i in range(1, 4)]})
    wms.admin.faults(feed_skip_seqs=[start + 2])
    assert [e["seq"] for e in feed(wms, start).json()["events"]] == [start + 1, start + 3]
    wms.admin.clear_faults()
    assert post(wms, "/_admin/feed-retention", {"events": 1}).json()["oldest_after_seq"] == start + 2
    gone = feed(wms, start)
    assert gone.status_code == 410 and gone.json()["oldest_after_seq"] == start + 2
    assert [e["seq"] for e in feed(wms, start + 2).json()["events"]] == [start + 3]


def test_cancel_once_unknown_and_shipped(wms: Any) -> None:
    wms.admin.reset(10, 1)
    before = wms.admin.items(["SKU-0000001"])[0]
    body = {"order_ref": "o1", "lines": [{"sku": "SKU-0000001", "qty": 2}]}
    assert post(wms, "/v1/orders", body, "o1").status_code == 201
    first = post(wms, "/v1/orders/cancel", key="o1")
    again = post(wms, "/v1/orders/cancel", key="o1")
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    assert wms.admin.items(["SKU-0000001"])[0]["allocated"] == before["allocated"]
    assert post(wms, "/v1/orders/cancel", key="never").status_code == 404
    assert post(wms, "/v1/orders/cancel").status_code == 400
    assert post(wms, "/v1/orders", {**body, "order_ref": "o2"}, "o2").status_code == 201
    shipped = post(wms, "/_admin/ship", {"keys": ["o2", "o1", "nope"]}).json()
    assert shipped["shipped"] == ["o2"] and {s["key"] for s in shipped["skipped"]} == {"o1", "nope"}
    after = wms.admin.items(["SKU-0000001"])[0]
    assert (after["on_hand"], after["allocated"]) == (before["on_hand"] - 2, before["allocated"])
    assert post(wms, "/v1/orders/cancel", key="o2").status_code == 409
    assert post(wms, "/_admin/adjust", {"items": [{"sku": "SKU-0000001", "on_hand": -10**6}]}).status_code == 422


# --- the walk of the feed (include/stocksync/wms/sources/feed.py) against the simulator's feed faults ---------

def walk(wms: Any, after: int, *, page_size: int = 1000, max_events: int = 1_000_000) -> Any:
    from include.stocksync.wms.sources.base import WalkBounds
    from include.stocksync.wms.sources.feed import ChangeFeedSource

    source = ChangeFeedSource(client(wms), wms.url, after_seq=after, page_size=page_size, max_events=max_events,
                              attempts=1)
    return source.walk(WalkBounds(max_events // page_size + 2, time.monotonic() + 30))


def changes(wms: Any, *adjustments: tuple[str, int]) -> int:
    """Apply relative on-hand changes one event each, in order; returns the feed position before them."""
    start = feed(wms, 10**9).json()["head_seq"]
    for sku, on_hand in adjustments:
        post(wms, "/_admin/adjust", {"items": [{"sku": sku, "on_hand": on_hand}]})
    return start


def test_walk_records_a_feed_that_stalls_before_its_head(wms: Any) -> None:
    wms.admin.reset(10, 1)
    start = changes(wms, ("SKU-0000001", 1), ("SKU-0000002", 1), ("SKU-0000003", 1))
    wms.admin.faults(feed_stall_after_seq=start + 1)
    part = walk(wms, start)
    assert (part.events, part.through_seq, part.head_seq, part.gap) == (1, start + 1, start + 3, None)
    assert part.stalled and f"gave nothing after {start + 1}" in part.stalled and str(start + 3) in part.stalled
    nothing = walk(wms, start + 1)  # the next run: no event at all while the head is further on
    assert (nothing.events, nothing.items, nothing.through_seq) == (0, {}, start + 1)
    assert nothing.stalled and nothing.gap is None
    wms.admin.clear_faults()
    caught_up = walk(wms, start + 1)
    assert (caught_up.events, caught_up.through_seq, caught_up.stalled) == (2, start + 3, None)
    assert walk(wms, start + 3).stalled is None  # at the head, an empty page is no stall


def test_walk_goes_by_each_events_sequence_not_its_place_on_the_page(wms: Any) -> None:
    wms.admin.reset(10, 1)
    start = changes(wms, ("SKU-0000001", 5), ("SKU-0000002", 1), ("SKU-0000001", 3), ("SKU-0000001", -2))
    final = {i["sku"]: i for i in wms.admin.items(["SKU-0000001", "SKU-0000002"])}
    wms.admin.faults(feed_reverse_pages=True)
    delta = walk(wms, start)
    assert (delta.gap, delta.events, delta.through_seq) == (None, 4, start + 4)
    assert {sku: (item["seq"], item["on_hand"]) for sku, item in delta.items.items()} == {
        sku: (item["seq"], item["on_hand"]) for sku, item in final.items()}
    assert delta.items["SKU-0000001"]["seq"] == start + 4  # the highest of its three changes
    # a missing sequence is still a gap, named, whatever the order
    wms.admin.faults(feed_reverse_pages=True, feed_skip_seqs=[start + 2])
    missing = walk(wms, start)
    assert missing.gap and f"jump from {start + 1} to {start + 3}" in missing.gap
    assert f"changes are missing (sequence {start + 2})" in missing.gap and missing.items == {}


def test_walk_skips_stale_and_repeated_events_and_applies_the_rest(wms: Any) -> None:
    wms.admin.reset(10, 1)
    start = changes(wms, *((f"SKU-000000{i}", 1) for i in range(1, 7)))
    # an at-least-once feed: every page starts with the two events before it, and one event twice
    wms.admin.faults(feed_replay_events=2, feed_repeat_seqs=[start + 6])
    delta = walk(wms, start + 2, page_size=3)
    assert (delta.gap, delta.stalled, delta.through_seq, delta.events) == (None, None, start + 6, 4)
    assert sorted(delta.items) == [f"SKU-000000{i}" for i in range(3, 7)]
    # each page (after start+2, +3, +4, +5) serves the two events at or below its after_seq again,
    # then one new one (the repeated start+6 is read once)
    assert delta.stale_seqs == [seq for after in range(start + 2, start + 6) for seq in (after - 1, after)]
    assert (delta.stale_events, delta.duplicate_events, delta.pages) == (8, 1, 4)
    # a page of nothing but what was already read, with the head further on, is a stall
    wms.admin.faults(feed_replay_events=3)
    replayed = walk(wms, start + 3, page_size=3)
    assert replayed.stalled and "only 3 events at or below it again" in replayed.stalled and replayed.events == 0


def test_sort_page_refuses_what_is_no_sequence_and_a_sequence_with_two_records() -> None:
    from include.stocksync.wms.sources.base import WmsContractError
    from include.stocksync.wms.sources.feed import sort_page

    a = {"seq": 11, "sku": "A", "available": 1}
    page = sort_page([{"seq": 12, "sku": "A", "available": 2}, a, dict(a), {"seq": 9, "sku": "B"}], 10, "p")
    assert ([seq for seq, _ in page.new], page.stale, page.duplicates, page.gap) == ([11, 12], [9], 1, None)
    conflict = sort_page([a, {**a, "available": 7}], 10, "p")
    assert conflict.gap and "sequence 11 twice with different records" in conflict.gap
    # PostgreSQL bigint holds 2**63 - 1 (a larger one cannot be stored as a position)
    for bad in ("12", 12.0, True, None, -1, 2**63):
        with pytest.raises(WmsContractError, match="no integer seq from 0 to 9223372036854775807"):
            sort_page([{"seq": bad, "sku": "A"}], 10, "p")
    with pytest.raises(WmsContractError, match="event 2 has no integer seq"):
        sort_page([a, ["not", "an", "object"]], 10, "p")
