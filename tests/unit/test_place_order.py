"""The shop's checkout `shop.place_order(text[], int[], text)` and the freeze it honours.

Runs against the real PostgreSQL test cluster; every test starts from an empty shop.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from include.stocksync.shop import freeze
from include.stocksync.store.db import connect
from tests.conftest import active_freezes, stock_fingerprint, try_place_order


def stock(dsn: str, **qty: int) -> None:
    """Products and stock rows (`sku=qty`)."""
    with connect(dsn) as conn:
        for sku, n in qty.items():
            conn.execute("INSERT INTO shop.products (sku, name) VALUES (%s, %s)", (sku, f"product {sku}"))
            conn.execute("INSERT INTO shop.stock (sku, qty, wms_seq) VALUES (%s, %s, 0)", (sku, n))
        conn.commit()


def qty_of(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        return dict(conn.execute("SELECT sku, qty FROM shop.stock").fetchall())


def orders(dsn: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute("SELECT o.order_id, o.status, o.customer_ref, l.sku, l.qty "
                            "FROM shop.orders o LEFT JOIN shop.order_lines l USING (order_id) "
                            "ORDER BY o.order_id, l.sku").fetchall()


def place(dsn: str, lines: list[tuple[str, int]], customer: str | None = None) -> int:
    with connect(dsn) as conn:
        row = conn.execute("SELECT shop.place_order(%s, %s, %s)",
                           ([s for s, _ in lines], [q for _, q in lines], customer)).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def refusal(dsn: str, skus: list[Any], qtys: list[Any]) -> psycopg.Error:
    with connect(dsn) as conn, pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT shop.place_order(%s::text[], %s::int[], 'c')", (skus, qtys))
    return info.value


@pytest.fixture
def shop(clean_shop: str) -> str:
    stock(clean_shop, **{"SKU-A": 10, "SKU-B": 3, "SKU-C": 0})
    return clean_shop


def test_order_decrements_every_line_and_records_it(shop: str) -> None:
    order_id = place(shop, [("SKU-B", 2), ("SKU-A", 4)], customer="alice")
    assert qty_of(shop) == {"SKU-A": 6, "SKU-B": 1, "SKU-C": 0}
    assert orders(shop) == [(order_id, "placed", "alice", "SKU-A", 4), (order_id, "placed", "alice", "SKU-B", 2)]
    with connect(shop) as conn:
        created, acked = conn.execute("SELECT created_at, wms_acknowledged_at FROM shop.orders").fetchone()
    assert created is not None and acked is None


def test_selling_the_last_unit_is_allowed(shop: str) -> None:
    order_id, problem = try_place_order(shop, [("SKU-B", 3)])
    assert problem is None and order_id is not None
    assert qty_of(shop)["SKU-B"] == 0


def test_oversell_is_refused_and_names_the_sku(shop: str) -> None:
    before = stock_fingerprint(shop)
    error = refusal(shop, ["SKU-A", "SKU-B"], [1, 4])
    assert error.sqlstate == "SF002"
    message = error.diag.message_primary or ""
    assert "SKU-B" in message
    assert "requested 4" in message and "available 3" in message
    # Atomic: the good line on SKU-A was not sold either, and no order exists.
    assert stock_fingerprint(shop) == before
    assert orders(shop) == []


def test_out_of_stock_sku_refused(shop: str) -> None:
    order_id, problem = try_place_order(shop, [("SKU-C", 1)])
    assert order_id is None
    assert problem is not None and "SKU-C" in problem
    assert orders(shop) == []


def test_two_lines_on_the_same_sku_are_summed(shop: str) -> None:
    order_id = place(shop, [("SKU-A", 3), ("SKU-A", 4)])
    assert qty_of(shop)["SKU-A"] == 3
    assert orders(shop) == [(order_id, "placed", None, "SKU-A", 7)]


def test_two_lines_on_the_same_sku_cannot_oversell_together(shop: str) -> None:
    # Each line alone (2 and 2) fits in SKU-B's 3 units; together they do not.
    error = refusal(shop, ["SKU-B", "SKU-B"], [2, 2])
    assert error.sqlstate == "SF002"
    assert "SKU-B" in (error.diag.message_primary or "")
    assert "requested 4" in (error.diag.message_primary or "")
    assert qty_of(shop)["SKU-B"] == 3
    assert orders(shop) == []


@pytest.mark.parametrize(("skus", "qtys", "fragment"), [
    (["SKU-A", "NO-SUCH"], [1, 1], "unknown SKU NO-SUCH"),
    (["SKU-A"], [0], "quantity above 0"),
    (["SKU-A"], [-2], "quantity above 0"),
    (["SKU-A", None], [1, 1], "quantity above 0"),
    (["SKU-A"], [None], "quantity above 0"),
    (["SKU-A", "SKU-B"], [1], "one quantity per SKU"),
    ([], [], "at least one line"),
])
def test_invalid_orders_are_sf003(shop: str, skus: list[Any], qtys: list[Any], fragment: str) -> None:
    before = stock_fingerprint(shop)
    error = refusal(shop, skus, qtys)
    assert error.sqlstate == "SF003"
    assert fragment in (error.diag.message_primary or "")
    assert stock_fingerprint(shop) == before
    assert orders(shop) == []


def test_freeze_refuses_checkout_and_changes_nothing(shop: str) -> None:
    with connect(shop) as conn:
        held = freeze.set_freeze(conn, set_by="run-1", reason="sync", message="Back soon.", ttl_seconds=600)
    assert held.expires_at > held.set_at
    before = stock_fingerprint(shop)
    error = refusal(shop, ["SKU-A"], [1])
    assert error.sqlstate == "SF001"
    message = error.diag.message_primary or ""
    assert message.startswith("checkout is frozen")
    assert "Back soon." in message
    assert "run-1" in (error.diag.message_detail or "")
    assert stock_fingerprint(shop) == before
    assert orders(shop) == []


def test_expired_freeze_does_not_block(shop: str) -> None:
    with connect(shop) as conn:
        conn.execute("INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, set_at, expires_at) "
                     "VALUES ('sync', 'gone', 'crashed-run', now() - interval '2 hours', "
                     "now() - interval '1 hour')")
        conn.commit()
    assert active_freezes(shop) == []
    order_id, problem = try_place_order(shop, [("SKU-A", 2)])
    assert problem is None and order_id is not None
    assert qty_of(shop)["SKU-A"] == 8


def test_released_freeze_does_not_block(shop: str) -> None:
    with connect(shop) as conn:
        freeze.set_freeze(conn, set_by="run-1", reason="sync", message="m", ttl_seconds=600)
        conn.commit()  # the freeze helpers leave the transaction to their caller
        assert try_place_order(shop, [("SKU-A", 1)])[0] is None
        assert freeze.release_freezes(conn, set_by="run-1") == 1
    order_id, problem = try_place_order(shop, [("SKU-A", 1)])
    assert problem is None and order_id is not None
    assert qty_of(shop)["SKU-A"] == 9


def test_release_only_touches_own_freezes(shop: str) -> None:
    with connect(shop) as conn:
        ops = freeze.set_freeze(conn, set_by="ops", reason="maintenance", message="Maintenance.",
                                ttl_seconds=600)
        run = freeze.set_freeze(conn, set_by="run-1", reason="sync", message="Sync.", ttl_seconds=600)
        conn.commit()
        assert {row[0] for row in active_freezes(shop)} == {ops.freeze_id, run.freeze_id}

        assert freeze.release_freezes(conn, set_by="run-1") == 1
        assert freeze.release_freezes(conn, set_by="run-1") == 0  # already released
        conn.commit()
        assert active_freezes(shop) == [(ops.freeze_id, "ops")]
        assert freeze.active_freezes(conn, set_by="run-1") == []
        assert [row[0] for row in freeze.active_freezes(conn, set_by="ops")] == [ops.freeze_id]

    # The manual freeze still closes checkout.
    order_id, problem = try_place_order(shop, [("SKU-A", 1)])
    assert order_id is None
    assert problem is not None and problem.startswith("checkout is frozen: Maintenance.")
    assert qty_of(shop)["SKU-A"] == 10

    with connect(shop) as conn:
        assert freeze.release_freezes(conn, set_by="ops") == 1
    assert active_freezes(shop) == []
    assert try_place_order(shop, [("SKU-A", 1)])[1] is None


def test_refused_order_leaves_no_rows_and_later_orders_work(shop: str) -> None:
    error = refusal(shop, ["SKU-A", "SKU-B"], [5, 9])
    assert error.sqlstate == "SF002"
    with connect(shop) as conn:
        assert conn.execute("SELECT count(*) FROM shop.orders").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM shop.order_lines").fetchone() == (0,)
    order_id = place(shop, [("SKU-A", 5), ("SKU-B", 3)])
    assert qty_of(shop) == {"SKU-A": 5, "SKU-B": 0, "SKU-C": 0}
    assert orders(shop) == [(order_id, "placed", None, "SKU-A", 5), (order_id, "placed", None, "SKU-B", 3)]


def test_shopper_message_promises_the_real_expiry(shop: str) -> None:
    """The expected end shown to shoppers is the freeze's own expiry (rounded up to the minute),
    never earlier, for any TTL (the apply mode's shorter one too)."""
    for ttl in (90, 600, 1800):
        with connect(shop) as conn:
            held = freeze.set_freeze(conn, set_by=f"run-{ttl}", reason="sync",
                                     message="Back after {expected_end}.", ttl_seconds=ttl)
        shown = held.shopper_message.removeprefix("Back after ").removesuffix(" UTC.")
        hours, minutes = (int(part) for part in shown.split(":"))
        expiry = held.expires_at.astimezone(timezone.utc)
        promised = expiry.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        if promised < expiry - timedelta(hours=12):  # rolled over midnight
            promised += timedelta(days=1)
        assert expiry <= promised < expiry + timedelta(minutes=1), (ttl, held.shopper_message, expiry)
        assert promised > datetime.now(timezone.utc)


def test_a_freeze_longer_than_the_hard_bound_is_refused(shop: str) -> None:
    with connect(shop) as conn, pytest.raises(ValueError, match="a freeze lasts 0..14400 s"):
        freeze.set_freeze(conn, set_by="run-x", reason="sync", message="m", ttl_seconds=86400)
