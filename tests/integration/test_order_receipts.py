"""The order push against a WMS whose answers cannot be taken at their word (tests/fault_servers.py
`AnsweringWms`, built from each request; the real WMS simulator for the reused key and the large
order): an order is acknowledged only on a receipt that is its own (its `order_ref`, its lines SKU by
SKU, a receipt id no other order holds); one order's refusal, whatever its status or body, holds that
order and never the orders behind it; a cancellation receipt for another order is not a
cancellation. The shop is the reference shop (the adapters share this code: sync/order_push.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import order_push
from tests.conftest import shop_in_line_with_wms
from tests.fault_servers import AnsweringWms
from tests.integration import test_order_push as order_push_tests
from tests.integration.loop_helpers import loop_settings, orders, orders_client, place, wms_allocated, wms_session

pytestmark = pytest.mark.slow

# the order push tests' shop (its catalog in line with the WMS) and its port
shop = order_push_tests.shop
port = order_push_tests.port
in_stock = order_push_tests.in_stock


@pytest.fixture
def answering() -> Iterator[Callable[..., AnsweringWms]]:
    made: list[AnsweringWms] = []

    def make(answer: Callable[[str, str, Any], tuple[int, Any]]) -> AnsweringWms:
        made.append(AnsweringWms(answer))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def receipt(key: str, lines: Any, receipt_id: Any = None) -> dict[str, Any]:
    return {"receipt_id": f"r-{key}" if receipt_id is None else receipt_id, "order_ref": key,
            "received_at": now_iso(), "lines": lines}


def client(url: str) -> order_push.WmsOrders:
    return order_push.WmsOrders(wms_session(), url, timeout=5)


def held(dsn: str) -> dict[int, str]:
    return {r["order_id"]: r["reason"] for r in order_push.dead_letters(dsn)}


def test_a_reused_key_gets_another_orders_receipt_and_the_order_is_held(shop: str, port: ShopPort,
                                                                        stocksync_dsn: str, wms: Any) -> None:
    """Order 1 (a x2) is pushed; the shop's database is restored from before it (the order, its
    sequence and stocksync's record gone) and a new order gets id 1 (b x3). The WMS answers the key
    with the first order's receipt (200): its order_ref is the key, its lines are a x2. The new
    order is held, never acknowledged on a receipt for an order the WMS never allocated."""
    a, b = in_stock(shop, 2)
    settings = loop_settings()
    first = place(shop, [(a, 2)])
    order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="before-restore", shop=port)
    with connect(shop) as conn:
        conn.execute("DELETE FROM shop.orders WHERE order_id = %s", (first,))
        conn.execute("SELECT setval(pg_get_serial_sequence('shop.orders', 'order_id'), %s, false)", (first,))
        conn.commit()
    with connect(stocksync_dsn) as conn:
        conn.execute("TRUNCATE stocksync.order_pushes")
        conn.commit()
    before = wms_allocated(wms, [b])[b]
    second = place(shop, [(b, 3)])
    assert second == first

    result = order_push.push_orders(stocksync_dsn, orders_client(wms), settings, run_id="after-restore", shop=port)

    assert orders(shop)[second]["acknowledged_at"] is None and wms_allocated(wms, [b])[b] == before
    assert [d.order_id for d in result.dead_lettered] == [second]
    assert "other lines than the order sent" in held(stocksync_dsn)[second]


@pytest.mark.parametrize("lie", ["qty-halved", "line-dropped", "no-lines", "other-sku", "lines-missing"])
def test_a_receipt_for_other_lines_is_not_an_acknowledgement(shop: str, port: ShopPort, stocksync_dsn: str,
                                                             answering: Any, lie: str) -> None:
    a, b = in_stock(shop, 2)
    order_id = place(shop, [(a, 4), (b, 1)])
    lied = {"qty-halved": lambda lines: [{**line, "qty": max(1, line["qty"] // 2)} for line in lines],
            "line-dropped": lambda lines: lines[:1], "no-lines": lambda lines: [],
            "other-sku": lambda lines: [{"sku": "SOMETHING-ELSE", "qty": 1}]}

    def answer(path: str, key: str, body: Any) -> tuple[int, Any]:
        if lie == "lines-missing":
            return 201, {k: v for k, v in receipt(key, []).items() if k != "lines"}
        return 201, receipt(key, lied[lie](body["lines"]))

    server = answering(answer)
    result = order_push.push_orders(stocksync_dsn, client(server.url), loop_settings(), run_id=f"lie-{lie}",
                                    shop=port)
    assert orders(shop)[order_id]["acknowledged_at"] is None
    assert [d.order_id for d in result.dead_lettered] == [order_id]


def test_receipt_ids_a_number_kept_one_for_two_orders_held(shop: str, port: ShopPort, stocksync_dsn: str,
                                                          answering: Any) -> None:
    """A receipt id that is a number is an id (kept as text); a receipt id the WMS already gave
    another order cannot acknowledge this one: held, the first order acknowledged."""
    a, b, c = in_stock(shop, 3)
    numbered, first, second = place(shop, [(a, 1)]), place(shop, [(b, 1)]), place(shop, [(c, 1)])
    numbered_key = order_push.order_key(loop_settings(), numbered)
    server = answering(lambda path, key, body: (201, receipt(key, body["lines"],
                                                             987654321 if key == numbered_key else "SAME")))
    result = order_push.push_orders(stocksync_dsn, client(server.url), loop_settings(), run_id="receipt-ids",
                                    shop=port)
    with connect(stocksync_dsn) as conn:
        kept = dict(conn.execute("SELECT order_id, receipt_id FROM stocksync.order_pushes").fetchall())
    assert kept == {numbered: "987654321", first: "SAME"}
    assert orders(shop)[second]["acknowledged_at"] is None and [d.order_id for d in result.dead_lettered] == [second]
    assert f"the receipt it gave order {first}" in held(stocksync_dsn)[second]


def test_one_order_refused_in_its_own_way_never_holds_back_the_orders_behind_it(
        shop: str, port: ShopPort, stocksync_dsn: str, answering: Any) -> None:
    """The oldest order answered 400 (a WMS's own validation); then one answered 422 with a body of
    100 KB. Each is held with its reason (the long body cut, not refused), and the orders behind
    them are sent and acknowledged in the same run."""
    a, b, c = in_stock(shop, 3)
    bad, huge, good = place(shop, [(a, 1)]), place(shop, [(b, 1)]), place(shop, [(c, 1)])
    keys = {order_push.order_key(loop_settings(), o): o for o in (bad, huge, good)}

    def answer(path: str, key: str, body: Any) -> tuple[int, Any]:
        if keys[key] == bad:
            return 400, {"error": "line 1: quantity unit EA not allowed for this article"}
        if keys[key] == huge:
            return 422, {"error": "x" * 100_000}
        return 201, receipt(key, body["lines"])

    server = answering(answer)
    result = order_push.push_orders(stocksync_dsn, client(server.url), loop_settings(), run_id="own-way", shop=port)

    assert orders(shop)[good]["acknowledged_at"] is not None
    assert sorted((d.order_id, d.http_status) for d in result.dead_lettered) == [(bad, 400), (huge, 422)]
    reasons = held(stocksync_dsn)
    assert reasons[bad] == "line 1: quantity unit EA not allowed for this article"
    assert 0 < len(reasons[huge]) <= order_push.MAX_REASON


@pytest.mark.parametrize(("body", "reason"), [({"error": ""}, "HTTP 422"), ({"error": "  "}, "HTTP 422"),
                                              (b"", "HTTP 422")], ids=["empty", "blank", "no-body"])
def test_a_refusal_without_words_is_held_with_its_status(shop: str, port: ShopPort, stocksync_dsn: str,
                                                         answering: Any, body: Any, reason: str) -> None:
    order_id = place(shop, [(in_stock(shop, 1)[0], 1)])
    server = answering(lambda path, key, request: (422, body))
    order_push.push_orders(stocksync_dsn, client(server.url), loop_settings(), run_id="no-words", shop=port)
    assert held(stocksync_dsn)[order_id] == reason


def test_a_cancellation_receipt_for_another_order_is_not_a_cancellation(shop: str, port: ShopPort,
                                                                        stocksync_dsn: str, answering: Any) -> None:
    order_id = place(shop, [(in_stock(shop, 1)[0], 1)])

    def answer(path: str, key: str, body: Any) -> tuple[int, Any]:
        if path.endswith("/cancel"):
            return 200, {"cancel_id": "c-9", "order_ref": "shop-order-999999", "cancelled_at": now_iso(), "lines": []}
        return 201, receipt(key, body["lines"])

    server = answering(answer)
    settings = loop_settings()
    order_push.push_orders(stocksync_dsn, client(server.url), settings, run_id="c-send", shop=port)
    with connect(shop) as conn:
        conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = %s", (order_id,))
        conn.commit()
    result = order_push.push_cancellations(stocksync_dsn, client(server.url), settings, run_id="c-cancel", shop=port)
    with connect(stocksync_dsn) as conn:
        cancelled_at, refused = conn.execute("SELECT cancelled_at, cancel_refused FROM stocksync.order_pushes "
                                             "WHERE order_id = %s", (order_id,)).fetchone()
    assert cancelled_at is None and "cancellation of another order" in refused
    assert (result.cancels_sent, result.cancels_refused) == (0, 1)


def test_an_order_of_2500_lines_is_acknowledged(clean_shop: str, stocksync_dsn: str, wms: Any) -> None:
    """A B2B order of 2,500 lines: the real WMS simulator's receipt echoes them (75 KB), more than a
    receipt's fixed bound: the bound grows with the lines sent, so the order is acknowledged (it was
    refused on every run, the WMS holding it and the shop subtracting it again, every later order
    stuck behind it)."""
    shop = shop_in_line_with_wms(clean_shop, wms, 2600, seed=7, drift_share=0.0)
    with connect(shop) as conn:
        skus = [r[0] for r in conn.execute("SELECT sku FROM shop.stock WHERE qty >= 1 ORDER BY sku LIMIT 2500")]
    order_id = place(shop, [(sku, 1) for sku in skus])
    before = sum(wms_allocated(wms, skus).values())
    order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id="b2b", shop=open_shop(shop))
    assert orders(shop)[order_id]["acknowledged_at"] is not None
    assert sum(wms_allocated(wms, skus).values()) == before + 2500


def test_a_batch_whose_record_cannot_commit_is_acknowledged_nowhere(shop: str, port: ShopPort, stocksync_dsn: str,
                                                                    wms: Any) -> None:
    """stocksync's record of a batch fails at its commit (here a deferred constraint trigger, as a
    lost connection or a full disk would at that moment): the shop's acknowledgements are not
    committed either, so the next run sends the orders again with their keys and both sides record
    them once (with the shop's commit first, its orders stayed acknowledged with no receipt in
    stocksync, for good: acknowledged orders are never sent again)."""
    import psycopg

    a = in_stock(shop, 1)[0]
    order_id = place(shop, [(a, 2)])
    before = wms_allocated(wms, [a])[a]
    with connect(stocksync_dsn) as conn:
        conn.execute("CREATE FUNCTION stocksync.refuse_commit() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN RAISE EXCEPTION 'the record of the batch cannot commit'; END$$")
        conn.execute("CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON stocksync.order_pushes "
                     "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION stocksync.refuse_commit()")
        conn.commit()
    try:
        with pytest.raises(psycopg.Error):
            order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id="record-lost", shop=port)
    finally:
        with connect(stocksync_dsn) as conn:
            conn.execute("DROP TRIGGER refuse_commit ON stocksync.order_pushes")
            conn.execute("DROP FUNCTION stocksync.refuse_commit()")
            conn.commit()
    assert orders(shop)[order_id]["acknowledged_at"] is None
    order_push.push_orders(stocksync_dsn, orders_client(wms), loop_settings(), run_id="record-again", shop=port)
    with connect(stocksync_dsn) as conn:
        recorded = conn.execute("SELECT answers FROM stocksync.order_pushes WHERE order_id = %s",
                                (order_id,)).fetchone()
    assert orders(shop)[order_id]["acknowledged_at"] is not None and recorded == ([200],)
    assert wms_allocated(wms, [a])[a] == before + 2  # allocated once: the second send got the original receipt
