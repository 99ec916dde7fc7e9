"""Tests for the simulated WMS (`devstack.wms_service`).

The real service runs as a subprocess on a free 127.0.0.1 port; the tests talk
HTTP to it with `requests`. Every test starts from `/_admin/reset` so the
order of the tests does not matter.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
N = 2500
SEED = 7
QTY_FIELDS = ("on_hand", "non_usable", "allocated", "available")
ITEM_FIELDS = ("sku", *QTY_FIELDS, "seq")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _run_service(log_path: Path, *extra: str) -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "devstack.wms_service",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "STOCKSYNC_WMS_TOKEN": TOKEN}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 15
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"WMS exited early:\n{log_path.read_text()}")
                try:
                    if requests.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"WMS did not come up:\n{log_path.read_text()}")
                time.sleep(0.05)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("wms") / "wms.log"
    with _run_service(
        log, "--skus", str(N), "--seed", str(SEED), "--snapshot-ttl", "600"
    ) as base:
        yield base


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        yield session


class Wms:
    """Tiny client for the tests."""

    def __init__(self, base: str, session: requests.Session) -> None:
        self.base = base
        self.s = session

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.s.post(self.base + path, timeout=10, **kw)

    def admin(self, path: str, body: Any) -> Any:
        r = self.post(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def faults(self, **cfg: Any) -> dict[str, Any]:
        return self.admin("/_admin/faults", cfg)

    def items(self, *skus: str) -> list[dict[str, Any]]:
        params = {"skus": ",".join(skus)} if skus else None
        r = self.get("/_admin/items", params=params)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def item(self, sku: str) -> dict[str, Any]:
        return self.items(sku)[0]

    def page(self, cursor: str | None = None, limit: int | None = None) -> Any:
        params: dict[str, Any] = {}
        if cursor:
            params["cursor"] = cursor
        if limit is not None:
            params["limit"] = limit
        r = self.get("/v1/stock", params=params)
        assert r.status_code == 200, r.text
        return json.loads(r.text)  # stdlib: accepts NaN / Infinity tokens

    def walk(self, limit: int = 1000) -> list[dict[str, Any]]:
        pages = [self.page(limit=limit)]
        while pages[-1]["next_cursor"]:
            pages.append(self.page(pages[-1]["next_cursor"], limit))
            assert len(pages) < 100, "walk does not terminate"
        return pages

    def order(self, key: str | None, body: Any) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.post("/v1/orders", json=body, headers=headers)


@pytest.fixture
def wms(base_url: str, http: requests.Session) -> Wms:
    client = Wms(base_url, http)
    assert client.admin("/_admin/reset", {"skus": N, "seed": SEED}) == {"skus": N}
    return client


def _all_items(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page["items"]]


def _sku(i: int) -> str:
    return f"SKU-{i:07d}"


def _max_seq(wms: Wms) -> int:
    return max(item["seq"] for item in wms.items())


# --------------------------------------------------------------------------- basics


def test_health_is_open(base_url: str) -> None:
    r = requests.get(f"{base_url}/health", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {k: body[k] for k in ("status", "skus")} == {"status": "ok", "skus": N}
    assert len(body["instance"]) == 32  # identifies this process


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/stock"),
        ("GET", "/v1/stock/changes"),
        ("POST", "/v1/orders"),
        ("POST", "/_admin/reset"),
        ("POST", "/_admin/set"),
        ("GET", "/_admin/items"),
        ("POST", "/_admin/faults"),
        ("DELETE", "/_admin/faults"),
    ],
)
@pytest.mark.parametrize(
    "auth", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer"]
)
def test_auth_required(base_url: str, method: str, path: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = requests.request(method, base_url + path, headers=headers, json={}, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"error": "missing or invalid bearer token"}


def test_full_walk_returns_every_sku_once_in_order(wms: Wms) -> None:
    pages = wms.walk(limit=1000)
    assert [len(p["items"]) for p in pages] == [1000, 1000, 500]
    items = _all_items(pages)
    assert [i["sku"] for i in items] == [_sku(i) for i in range(1, N + 1)]
    assert len({p["snapshot_id"] for p in pages}) == 1
    assert pages[-1]["next_cursor"] is None
    assert all(p["next_cursor"] for p in pages[:-1])
    first = pages[0]
    taken = datetime.fromisoformat(first["snapshot_taken_at"])
    assert taken.tzinfo is not None and taken.utcoffset() is not None
    assert first["orders_counted_until"] == first["snapshot_taken_at"]
    for item in items:
        assert set(item) == set(ITEM_FIELDS)
        assert all(type(item[f]) is int for f in (*QTY_FIELDS, "seq"))
        assert item["available"] == (
            item["on_hand"] - item["non_usable"] - item["allocated"]
        )
        assert 0 <= item["on_hand"] <= 500
        assert 0 <= item["non_usable"] <= min(5, item["on_hand"])
        assert item["available"] >= 0
        assert 1 <= item["seq"] <= 1000
    # realistic shape: non_usable mostly 0, available usually well above 0
    assert sum(i["non_usable"] == 0 for i in items) > 0.8 * N
    assert sum(i["available"] > 10 for i in items) > 0.8 * N
    # the walk matches the live records
    assert items == wms.items()


def test_default_and_maximum_limit(wms: Wms) -> None:
    assert len(wms.page()["items"]) == 1000
    assert len(wms.page(limit=10000)["items"]) == N
    assert wms.page(limit=10000)["next_cursor"] is None


def test_each_walk_takes_a_new_snapshot(wms: Wms) -> None:
    ids = {wms.page(limit=1)["snapshot_id"] for _ in range(3)}
    assert len(ids) == 3


def test_walk_is_consistent_while_data_changes(wms: Wms) -> None:
    target = _sku(1500)  # on the second page
    before = wms.item(target)
    old_max = _max_seq(wms)
    first = wms.page(limit=1000)
    changed = wms.admin(
        "/_admin/set",
        {"items": [{"sku": target, "on_hand": 499, "non_usable": 0, "allocated": 4}]},
    )["items"][0]
    assert changed["available"] == 495 and changed["seq"] == old_max + 1
    second = wms.page(first["next_cursor"], 1000)
    assert second["snapshot_id"] == first["snapshot_id"]
    in_walk = next(i for i in second["items"] if i["sku"] == target)
    assert in_walk == before
    # a new walk sees the change with a higher seq
    fresh = {i["sku"]: i for i in _all_items(wms.walk(limit=1000))}
    assert fresh[target] == changed
    assert fresh[target]["seq"] > before["seq"]


def test_same_seed_same_data_different_seed_differs(wms: Wms) -> None:
    startup = wms.items()
    wms.admin("/_admin/reset", {"skus": N, "seed": SEED})
    assert wms.items() == startup
    assert _all_items(wms.walk(limit=10000)) == startup
    wms.admin("/_admin/reset", {"skus": N, "seed": SEED + 1})
    other = wms.items()
    assert [i["sku"] for i in other] == [i["sku"] for i in startup]
    assert other != startup
    assert wms.admin("/_admin/reset", {"skus": 10, "seed": 1}) == {"skus": 10}
    assert len(wms.items()) == 10
    assert requests.get(wms.base + "/health", timeout=5).json()["skus"] == 10


def test_empty_catalog(wms: Wms) -> None:
    wms.admin("/_admin/reset", {"skus": 0, "seed": 1})
    page = wms.page()
    assert page["items"] == [] and page["next_cursor"] is None
    assert wms.get("/v1/stock/changes").json() == {"items": [], "next_after_seq": None}


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("limit", ["0", "10001", "abc", "1.5", "-3", "1e3"])
def test_bad_limit_is_400(wms: Wms, limit: str) -> None:
    r = wms.get("/v1/stock", params={"limit": limit})
    assert r.status_code == 400
    assert "limit" in r.json()["error"]
    r = wms.get("/v1/stock/changes", params={"limit": limit})
    assert r.status_code == 400


def test_malformed_cursor_is_400(wms: Wms) -> None:
    junk = base64.urlsafe_b64encode(b"garbage").decode()
    for cursor in ["!!!not-base64!!!", junk, "x"]:
        r = wms.get("/v1/stock", params={"cursor": cursor})
        assert r.status_code == 400, cursor
        assert "cursor" in r.json()["error"]


def test_cursor_of_evicted_snapshot_is_410(wms: Wms) -> None:
    old = wms.page(limit=100)
    recent = [wms.page(limit=100) for _ in range(4)]  # only 4 snapshots are kept
    r = wms.get("/v1/stock", params={"cursor": old["next_cursor"], "limit": 100})
    assert r.status_code == 410
    error = r.json()["error"]
    assert error.startswith(f"cursor expired: snapshot {old['snapshot_id']}")
    assert error.endswith("restart the walk")
    # the newest snapshots still work
    for page in recent:
        assert wms.page(page["next_cursor"], 100)["snapshot_id"] == page["snapshot_id"]


def test_cursor_of_snapshot_older_than_ttl_is_410(wms: Wms) -> None:
    try:
        assert wms.admin("/_admin/snapshot-ttl", {"seconds": 0.2}) == {"seconds": 0.2}
        first = wms.page(limit=100)
        time.sleep(0.35)
        r = wms.get("/v1/stock", params={"cursor": first["next_cursor"]})
        assert r.status_code == 410
        assert r.json()["error"].startswith("cursor expired")
    finally:
        wms.admin("/_admin/snapshot-ttl", {"seconds": 600})
    # with the normal TTL the same kind of walk proceeds
    first = wms.page(limit=100)
    time.sleep(0.35)
    assert wms.page(first["next_cursor"], 100)["items"][0]["sku"] == _sku(101)


def test_unknown_route_is_json_404(wms: Wms) -> None:
    r = wms.get("/v1/nope")
    assert r.status_code == 404
    assert "error" in r.json()


# --------------------------------------------------------------------------- orders


def _pick_sku(wms: Wms, min_available: int) -> dict[str, Any]:
    return next(i for i in wms.items() if i["available"] >= min_available)


def test_order_is_idempotent(wms: Wms) -> None:
    item = _pick_sku(wms, 5)
    old_max = _max_seq(wms)
    body = {"order_ref": "ORD-1", "lines": [{"sku": item["sku"], "qty": 3}]}
    r = wms.order("key-1", body)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) == {"receipt_id", "order_ref", "received_at", "lines"}
    assert receipt["order_ref"] == "ORD-1"
    assert receipt["lines"] == [{"sku": item["sku"], "qty": 3}]
    assert datetime.fromisoformat(receipt["received_at"]).tzinfo is not None
    after = wms.item(item["sku"])
    assert after["allocated"] == item["allocated"] + 3
    assert after["available"] == item["available"] - 3
    assert after["on_hand"] == item["on_hand"]
    assert after["seq"] == old_max + 1

    # same key, even with another body: original receipt, nothing allocated twice
    other = {"order_ref": "ORD-2", "lines": [{"sku": item["sku"], "qty": 1}]}
    r2 = wms.order("key-1", other)
    assert r2.status_code == 200
    assert r2.json() == receipt
    assert wms.item(item["sku"]) == after

    # a new key allocates again
    r3 = wms.order("key-2", other)
    assert r3.status_code == 201
    assert r3.json()["receipt_id"] != receipt["receipt_id"]
    assert wms.item(item["sku"])["allocated"] == item["allocated"] + 4


def test_order_counted_in_next_snapshot_before_watermark(wms: Wms) -> None:
    item = _pick_sku(wms, 2)
    r = wms.order("k", {"order_ref": "O", "lines": [{"sku": item["sku"], "qty": 2}]})
    assert r.status_code == 201
    page = wms.page(limit=10000)
    assert page["orders_counted_until"] >= r.json()["received_at"]
    walked = next(i for i in page["items"] if i["sku"] == item["sku"])
    assert walked["allocated"] == item["allocated"] + 2


def test_order_with_insufficient_stock_is_rejected_whole(wms: Wms) -> None:
    ok, short = _sku(1), _sku(2)
    wms.admin(
        "/_admin/set",
        {
            "items": [
                {"sku": ok, "on_hand": 50, "non_usable": 0, "allocated": 0},
                {"sku": short, "on_hand": 5, "non_usable": 1, "allocated": 2},
            ]
        },
    )
    before = wms.items(ok, short)
    body = {
        "order_ref": "O",
        "lines": [{"sku": ok, "qty": 1}, {"sku": short, "qty": 3}],
    }
    r = wms.order("key-short", body)
    assert r.status_code == 409
    assert r.json()["error"] == f"insufficient stock for {short}"
    assert wms.items(ok, short) == before
    # two lines of the same SKU count together
    r = wms.order(
        "key-sum",
        {
            "order_ref": "O",
            "lines": [{"sku": short, "qty": 1}, {"sku": short, "qty": 2}],
        },
    )
    assert r.status_code == 409
    # taking exactly the available stock works; available drops to 0
    r = wms.order("key-short", {"order_ref": "O", "lines": [{"sku": short, "qty": 2}]})
    assert r.status_code == 201
    assert wms.item(short)["available"] == 0


def test_order_validation(wms: Wms) -> None:
    good = {"order_ref": "O", "lines": [{"sku": _sku(1), "qty": 1}]}
    before = wms.item(_sku(1))
    r = wms.order(None, good)
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["error"]
    r = wms.order(
        "k-unknown", {"order_ref": "O", "lines": [{"sku": "SKU-9999999", "qty": 1}]}
    )
    assert r.status_code == 422
    assert "SKU-9999999" in r.json()["error"]
    bad_bodies: list[Any] = [
        [],
        {"lines": good["lines"]},
        {"order_ref": "O", "lines": []},
        {"order_ref": "O", "lines": [{"sku": _sku(1), "qty": 0}]},
        {"order_ref": "O", "lines": [{"sku": _sku(1), "qty": "1"}]},
        {"order_ref": "O", "lines": [{"sku": _sku(1), "qty": 1.5}]},
        {"order_ref": "O", "lines": [{"qty": 1}]},
    ]
    for i, body in enumerate(bad_bodies):
        r = wms.order(f"k-bad-{i}", body)
        assert r.status_code == 422, body
        assert r.json()["error"], body
    r = wms.post(
        "/v1/orders",
        data=b"{not json",
        headers={"Idempotency-Key": "k-json", "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]
    assert wms.item(_sku(1)) == before  # nothing was allocated
    # rejected orders are not remembered: the key can still be used
    assert wms.order("k-unknown", good).status_code == 201


# --------------------------------------------------------------------------- changes / admin


def test_changes_feed(wms: Wms) -> None:
    old_max = _max_seq(wms)
    r = wms.get("/v1/stock/changes", params={"after_seq": old_max})
    assert r.json() == {"items": [], "next_after_seq": None}
    order = [_sku(30), _sku(10), _sku(20)]
    for sku in order:
        wms.admin("/_admin/set", {"items": [{"sku": sku, "allocated": 0}]})
    body = wms.get("/v1/stock/changes", params={"after_seq": old_max}).json()
    assert [i["sku"] for i in body["items"]] == order
    assert [i["seq"] for i in body["items"]] == [old_max + 1, old_max + 2, old_max + 3]
    assert body["next_after_seq"] == old_max + 3
    assert body["items"] == [wms.item(s) for s in order]
    first = wms.get(
        "/v1/stock/changes", params={"after_seq": old_max, "limit": 2}
    ).json()
    assert [i["sku"] for i in first["items"]] == order[:2]
    rest = wms.get(
        "/v1/stock/changes", params={"after_seq": first["next_after_seq"], "limit": 2}
    ).json()
    assert [i["sku"] for i in rest["items"]] == order[2:]
    # from the start: ordered by seq, limited
    head = wms.get("/v1/stock/changes", params={"after_seq": 0, "limit": 50}).json()
    seqs = [i["seq"] for i in head["items"]]
    assert len(seqs) == 50 and seqs == sorted(seqs)
    assert seqs[0] == min(i["seq"] for i in wms.items())
    assert wms.get("/v1/stock/changes", params={"after_seq": "x"}).status_code == 400


def test_admin_set_validation(wms: Wms) -> None:
    sku = _sku(3)
    before = wms.item(sku)
    r = wms.post("/_admin/set", json={"items": [{"sku": "SKU-0099999", "on_hand": 1}]})
    assert r.status_code == 422
    r = wms.post(
        "/_admin/set",
        json={"items": [{"sku": sku, "on_hand": 1, "non_usable": 0, "allocated": 2}]},
    )
    assert r.status_code == 422
    assert "negative" in r.json()["error"]
    r = wms.post("/_admin/set", json={"items": [{"sku": sku, "on_hand": -1}]})
    assert r.status_code == 422
    r = wms.post("/_admin/set", json={"items": [{"sku": sku, "available": 3}]})
    assert r.status_code == 422
    assert wms.item(sku) == before
    r = wms.get("/_admin/items", params={"skus": "SKU-nope"})
    assert r.status_code == 422


# --------------------------------------------------------------------------- faults


def test_fail_status_with_count(wms: Wms) -> None:
    active = wms.faults(fail_status=503, fail_count=2)
    assert active["fail_status"] == 503 and active["fail_count"] == 2
    for _ in range(2):
        r = wms.get("/v1/stock")
        assert r.status_code == 503
        assert r.json() == {"error": "injected failure"}
    assert wms.get("/v1/stock").status_code == 200
    # admin and health are not affected; -1 fails every request
    wms.faults(fail_status=500, fail_count=-1)
    assert wms.get("/_admin/faults").json()["fail_count"] == -1
    statuses = {wms.get("/v1/stock/changes").status_code for _ in range(3)}
    assert statuses == {500}
    assert wms.order("k", {"order_ref": "O", "lines": []}).status_code == 500
    assert len(wms.items()) == N
    assert requests.get(wms.base + "/health", timeout=5).status_code == 200
    r = wms.s.delete(wms.base + "/_admin/faults", timeout=5)
    assert r.status_code == 200 and r.json() == {}
    assert wms.get("/v1/stock").status_code == 200


def test_unauthenticated_requests_do_not_consume_failures(wms: Wms) -> None:
    wms.faults(fail_status=503, fail_count=1)
    assert requests.get(wms.base + "/v1/stock", timeout=5).status_code == 401
    assert wms.get("/v1/stock").status_code == 503
    assert wms.get("/v1/stock").status_code == 200


def test_latency_and_timeout(wms: Wms) -> None:
    # latency delays /v1 answers: a client that will not wait it out gets none; one that waits
    # gets the page. Admin routes answer within the same client timeout: they are not delayed.
    wms.faults(latency_ms=5000)
    with pytest.raises(requests.Timeout):
        wms.s.get(wms.base + "/v1/stock", params={"limit": 1}, timeout=1)
    assert wms.s.get(wms.base + "/_admin/items", params={"skus": _sku(1)}, timeout=4).status_code == 200
    wms.faults(latency_ms=300)
    assert wms.get("/v1/stock", params={"limit": 1}).status_code == 200

    wms.faults(timeout_ms=1500)
    with pytest.raises(requests.Timeout):
        wms.s.get(wms.base + "/v1/stock", timeout=0.3)
    # an order whose answer timed out was still taken; the retry is idempotent
    item = _pick_sku(wms, 1)
    body = {"order_ref": "O-T", "lines": [{"sku": item["sku"], "qty": 1}]}
    with pytest.raises(requests.Timeout):
        wms.s.post(
            wms.base + "/v1/orders",
            json=body,
            headers={"Idempotency-Key": "k-timeout"},
            timeout=0.3,
        )
    time.sleep(0.05)
    assert wms.item(item["sku"])["allocated"] == item["allocated"] + 1
    wms.s.delete(wms.base + "/_admin/faults", timeout=5)
    r = wms.order("k-timeout", body)
    assert r.status_code == 200 and r.json()["order_ref"] == "O-T"
    assert wms.item(item["sku"])["allocated"] == item["allocated"] + 1


def test_corrupt_values(wms: Wms) -> None:
    huge = 10**30
    wms.faults(
        corrupt=[
            {"sku": _sku(1), "field": "on_hand", "value": "__NaN__"},
            {"sku": _sku(2), "field": "available", "value": "__Infinity__"},
            {"sku": _sku(3), "field": "allocated", "value": huge},
            {"sku": _sku(4), "field": "on_hand", "value": "12"},
            {"sku": _sku(5), "field": "non_usable", "value": None},
            {"sku": _sku(6), "field": "available", "value": 7.5},
            {"sku": _sku(7), "field": "seq", "value": "__drop__"},
            {"sku": _sku(8), "field": "bin", "value": "A-01"},
            {"sku": _sku(2001), "field": "on_hand", "value": -5},
        ]
    )
    r = wms.get("/v1/stock", params={"limit": 10})
    assert r.status_code == 200
    assert '"on_hand":NaN' in r.text.replace(" ", "")
    assert '"available":Infinity' in r.text.replace(" ", "")
    assert str(huge) in r.text
    items = json.loads(r.text)["items"]
    assert math.isnan(items[0]["on_hand"])
    assert items[1]["available"] == math.inf
    assert items[2]["allocated"] == huge
    assert items[3]["on_hand"] == "12"
    assert items[4]["non_usable"] is None
    assert items[5]["available"] == 7.5
    assert "seq" not in items[6] and set(items[6]) == set(ITEM_FIELDS) - {"seq"}
    assert items[7]["bin"] == "A-01"
    assert set(items[8]) == set(ITEM_FIELDS)  # untouched SKU
    walked = {i["sku"]: i for i in _all_items(wms.walk(limit=1000))}
    assert walked[_sku(2001)]["on_hand"] == -5
    # the live data is unchanged
    assert type(wms.item(_sku(1))["on_hand"]) is int


def test_drop_and_extra_fields(wms: Wms) -> None:
    wms.faults(drop_fields=["available", "seq"], extra_fields={"warehouse": "W1"})
    items = _all_items(wms.walk(limit=1000))
    assert len(items) == N
    for item in items:
        assert set(item) == {"sku", "on_hand", "non_usable", "allocated", "warehouse"}
        assert item["warehouse"] == "W1"


def test_duplicate_sku(wms: Wms) -> None:
    dup = _sku(1234)
    wms.faults(duplicate_sku=dup)
    pages = wms.walk(limit=1000)
    skus = [i["sku"] for i in _all_items(pages)]
    assert len(skus) == N + 1
    assert skus.count(dup) == 2
    assert len(pages[1]["items"]) == 1001
    assert len(set(skus)) == N


def test_repeat_page(wms: Wms) -> None:
    wms.faults(repeat_page=1)
    pages = wms.walk(limit=1000)
    assert len(pages) == 4
    assert pages[1]["items"] == pages[2]["items"]
    skus = [i["sku"] for i in _all_items(pages)]
    assert len(skus) == N + 1000
    assert set(skus) == {_sku(i) for i in range(1, N + 1)}
    assert len({p["snapshot_id"] for p in pages}) == 1


def test_drop_last_page(wms: Wms) -> None:
    wms.faults(drop_last_page=True)
    pages = wms.walk(limit=1000)
    assert len(pages) == 2
    assert pages[-1]["next_cursor"] is None
    skus = [i["sku"] for i in _all_items(pages)]
    assert skus == [_sku(i) for i in range(1, 2001)]


def test_max_items(wms: Wms) -> None:
    wms.faults(max_items=1234)
    skus = [i["sku"] for i in _all_items(wms.walk(limit=500))]
    assert skus == [_sku(i) for i in range(1, 1235)]


def test_zero_all(wms: Wms) -> None:
    wms.faults(zero_all=True)
    items = _all_items(wms.walk(limit=1000))
    assert len(items) == N
    assert all(i[f] == 0 for i in items for f in QTY_FIELDS)
    assert all(i["seq"] >= 1 for i in items)
    assert any(i["on_hand"] > 0 for i in wms.items())  # live data intact


def test_expire_cursors(wms: Wms) -> None:
    wms.faults(expire_cursors=True)
    first = wms.page(limit=1000)
    assert len(first["items"]) == 1000
    r = wms.get("/v1/stock", params={"cursor": first["next_cursor"]})
    assert r.status_code == 410
    assert r.json()["error"].startswith("cursor expired")


def test_sku_rename(wms: Wms) -> None:
    wms.faults(sku_rename={_sku(2): "LEGACY-2"})
    skus = [i["sku"] for i in _all_items(wms.walk(limit=1000))]
    assert skus[1] == "LEGACY-2"
    assert _sku(2) not in skus
    assert len(skus) == N


def test_no_watermark_fault(wms: Wms) -> None:
    wms.faults(no_watermark=True)
    assert wms.page(limit=1)["orders_counted_until"] is None


def test_item_faults_apply_to_changes(wms: Wms) -> None:
    old_max = _max_seq(wms)
    wms.admin("/_admin/set", {"items": [{"sku": _sku(9), "allocated": 0}]})
    wms.faults(corrupt=[{"sku": _sku(9), "field": "available", "value": "__NaN__"}])
    r = wms.get("/v1/stock/changes", params={"after_seq": old_max})
    body = json.loads(r.text)
    assert math.isnan(body["items"][0]["available"])
    assert body["next_after_seq"] == old_max + 1


def test_fault_config_validation_and_reset(wms: Wms) -> None:
    r = wms.post("/_admin/faults", json={"no_such_fault": 1})
    assert r.status_code == 422
    assert "no_such_fault" in r.json()["error"]
    assert wms.post("/_admin/faults", json={"fail_status": "x"}).status_code == 422
    active = wms.faults(zero_all=True, latency_ms=1)
    assert active == {"zero_all": True, "latency_ms": 1}
    assert wms.get("/_admin/faults").json() == active
    # a new config replaces the old one
    assert wms.faults(max_items=3) == {"max_items": 3}
    assert len(wms.page()["items"]) == 3
    assert wms.page()["items"][0]["on_hand"] == wms.item(_sku(1))["on_hand"]
    # reset clears faults
    wms.admin("/_admin/reset", {"skus": N, "seed": SEED})
    assert wms.get("/_admin/faults").json() == {}
    assert len(wms.page()["items"]) == 1000


# --------------------------------------------------------------------------- CLI variant


def test_no_watermark_cli_flag(tmp_path: Path) -> None:
    with _run_service(
        tmp_path / "wms.log", "--skus", "5", "--seed", "3", "--no-watermark"
    ) as base:
        health = requests.get(f"{base}/health", timeout=5).json()
        assert (health["status"], health["skus"]) == ("ok", 5)
        r = requests.get(
            f"{base}/v1/stock", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        body = r.json()
        assert body["orders_counted_until"] is None
        assert body["snapshot_taken_at"]
        assert [i["sku"] for i in body["items"]] == [_sku(i) for i in range(1, 6)]
        assert body["next_cursor"] is None


def test_pages_rendered_from_the_arrays_are_the_bytes_of_the_items() -> None:
    """A page without item faults is rendered straight from the arrays; same bytes as
    build_items + orjson (names padded to 7 digits, the 10,000,000th SKU has 8)."""
    import orjson

    from devstack.wms_service import build_items, generate_columns, render_items, sku_name

    data = generate_columns(5000, 11)
    for first, end in ((0, 5000), (17, 18), (4990, 5000), (3, 3)):
        assert render_items(data, first, end) == orjson.dumps(build_items(data, slice(first, end), first=first))
    assert sku_name(9_999_998) == "SKU-9999999" and sku_name(9_999_999) == "SKU-10000000"
