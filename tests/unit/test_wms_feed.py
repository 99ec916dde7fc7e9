"""The WMS simulator's change log and order lifecycle (issue 13), over HTTP against the real service:
dense sequences in order, paging, the per-page `orders_counted_until`, retention (410), the skip
fault, cancellations (once; 404 unknown; 409 shipped), shipping and relative adjustments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
