"""The prestashop adapter's order push and live write-back on a real MariaDB, for a shop with its
own stock rows and for a shop group sharing its stock (the `store` fixture's two parameters).

Orders go through the test store's order validation (`Store.place_order`: the order, its
`order_detail` lines with the reference at order time, the decremented rows); states and refunds
change as PrestaShop changes them. The expected lines and figures are worked out here from the
test's own book of orders (test_prestashop_stock.expected_quantity), not read through the adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.stocksync.availability.skus import import_variants, options_key
from include.stocksync.shop.port import DemandRow, OrderLine, OrderRef, Sellable, ShopContractError, StockRow
from include.stocksync.shop.prestashop.adapter import PrestaShopShop, acknowledge_orders
from include.stocksync.store.db import connect
from tests.conftest import SplitDatabases
from tests.integration.mariadb_shops import (  # noqa: F401 (fixture)
    ListSink,
    demand_query,
    live_write_back_waits_for_an_apply,
    mariadb_server,
    order_push_holds_back_an_apply_not_checkout,
    shop_dsn,
    sync,
)
from tests.integration.test_prestashop_stock import PREFIX, Store, counted, expected_quantity, store  # noqa: F401

UNSENT = ("placed", "paid")


@pytest.fixture
def presta(store: tuple[Store, PrestaShopShop]) -> tuple[Store, PrestaShopShop]:  # noqa: F811 (the imported fixture)
    """A PrestaShop store of its own (a MariaDB database per test) and the adapter on it."""
    return store


def date_add(s: Store, id_order: int) -> datetime:
    return s.rows("SELECT date_add FROM {p}orders WHERE id_order = %s", (id_order,))[0][0]


def test_order_push_reads_orders_lines_and_keeps_the_acknowledgement(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("PLAIN")
    s.product("TEE", combinations=("TEE-S", "TEE-M"))
    sync(shop, {"PLAIN": (20, 1), "TEE-S": (5, 1), "TEE-M": (5, 1)})
    paid = s.place_order({"TEE-M": 2, "PLAIN": 3, "TEE-S": 1})
    placed = s.place_order({"PLAIN": 1})
    shipped = s.place_order({"PLAIN": 1})
    cancelled = s.place_order({"TEE-S": 1})
    known = s.place_order({"PLAIN": 2})
    other_shop = s.place_order({"PLAIN": 1}, id_shop=2)
    assert None not in (paid, placed, shipped, cancelled, known, other_shop)
    s.set_state(placed, 1)     # awaiting check payment
    s.set_state(shipped, 4)
    s.set_state(cancelled, 6)
    s.refund(paid, "PLAIN", 1)
    # the combination was renamed after the order: the WMS knows it by its reference now
    s.run("UPDATE {p}product_attribute SET reference = 'TEE-SMALL' WHERE reference = 'TEE-S'")
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    acknowledge_orders(shop, {cancelled: earlier, known: earlier})

    sends = [paid, placed] + ([other_shop] if s.row_group else [])  # a group sharing stock: its shops' orders
    assert [o.order_id for o in shop.unacknowledged_orders(UNSENT)] == sends
    assert [o.order_id for o in shop.cancelled_orders(("cancelled",))] == [cancelled]
    received = datetime(2026, 1, 3, 10, 0, 0, 250000, tzinfo=UTC)
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        lines = batch.order_lines([placed, paid])
        changed = batch.acknowledge([paid, known], [received, received])
    assert lines == [OrderLine(paid, "PLAIN", 3 - 1), OrderLine(paid, "TEE-M", 2), OrderLine(paid, "TEE-SMALL", 1),
                     OrderLine(placed, "PLAIN", 1)]
    assert changed == [paid]  # the known order keeps its first acknowledgement
    stored = dict(s.rows("SELECT id_order, acknowledged_at FROM {p}stocksync_order_ack"))
    assert {o: at.replace(tzinfo=UTC) for o, at in stored.items()} == {paid: received, cancelled: earlier,
                                                                       known: earlier}
    assert [o.order_id for o in shop.unacknowledged_orders(UNSENT)] == sends[1:]
    with pytest.raises(ShopContractError, match="'lost'.*prestashop order_statuses"):
        shop.cancelled_orders(("lost",))


def test_order_times_are_read_in_the_shops_time_zone(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("PLAIN")
    sync(shop, {"PLAIN": (5, 1)})
    order = s.place_order({"PLAIN": 1})
    s.run("UPDATE {p}orders SET date_add = '2026-07-01 12:30:00' WHERE id_order = %s", (order,))
    paris = PrestaShopShop(shop_dsn(s.server, s.database), table_prefix=PREFIX, time_zone="Europe/Paris")
    assert paris.unacknowledged_orders(UNSENT) == [OrderRef(order, datetime(2026, 7, 1, 10, 30, tzinfo=UTC))]
    assert date_add(s, order) == datetime(2026, 7, 1, 12, 30)  # PrestaShop's own wall clock, untouched
    with pytest.raises(ValueError, match="PS_TIMEZONE"):
        PrestaShopShop(shop_dsn(s.server, s.database), time_zone="Mars/Olympus")


def test_an_acknowledged_order_is_taken_off_once(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("RACE")
    sync(shop, {"RACE": (50, 1)})
    order = s.place_order({"RACE": 3})
    assert order is not None
    sink = ListSink()
    shop.stream_demand(demand_query(datetime.now(UTC)), sink)
    assert sink.rows == [("RACE", 3, 0)]
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        assert batch.order_lines([order]) == [OrderLine(order, "RACE", 3)]
        assert batch.acknowledge([order], [datetime.now(UTC) - timedelta(minutes=1)]) == [order]
    s.orders[order].counted_by_wms = True
    sync(shop, {"RACE": (47, 2)})  # the WMS allocated the 3 units
    assert s.quantity("RACE") == expected_quantity(s, "RACE", 47) == 47


def test_the_order_push_lock_holds_an_apply_back_not_checkout(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("LOCK")
    sync(shop, {"LOCK": (5, 1)})
    order_push_holds_back_an_apply_not_checkout(shop, lambda: s.place_order({"LOCK": 1}) is not None)


def test_live_write_back_writes_the_combination_and_the_product_total(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("TEE", combinations=("TEE-S", "TEE-M"))
    s.product("NOROW")
    s.run("DELETE FROM {p}stock_available WHERE id_product = %s", (s.items["NOROW"][0],))
    sync(shop, {"TEE-S": (10, 1), "TEE-M": (20, 1)})
    first = s.place_order({"TEE-M": 4})
    second = s.place_order({"TEE-M": 3})
    assert first is not None and second is not None
    counted(shop, s, first)
    query = demand_query(datetime.now(UTC))
    with shop.live_session("TEE-M", lock_timeout_seconds=5) as live:
        assert live.current == StockRow("TEE-M", 20 - 4 - 3, 1)
        assert live.demand(query) == DemandRow("TEE-M", 3, 0)
        assert live.write(16 - 3, 1) is None  # the same WMS sequence is already applied
        assert live.write(16 - 3, 2) == StockRow("TEE-M", 13, 2)
    assert s.quantity("TEE-M") == expected_quantity(s, "TEE-M", 16) == 13
    assert s.product_total("TEE-M") == s.quantity("TEE-S") + s.quantity("TEE-M") == 10 + 13
    with shop.live_session("NOROW", lock_timeout_seconds=5) as live:
        assert live.current is None
        assert live.demand(query) == DemandRow("NOROW", 0, 0)
        assert live.write(5, 9) is None


def test_live_write_back_waits_for_the_apply(presta: tuple[Store, PrestaShopShop]) -> None:
    s, shop = presta
    s.product("WAIT")
    sync(shop, {"WAIT": (5, 1)})
    live_write_back_waits_for_an_apply(shop, "WAIT")


def test_combinations_fill_the_sku_map(presta: tuple[Store, PrestaShopShop], clean_split: SplitDatabases) -> None:
    """A shopper's choice on a product page (the product's reference + the options as the form sends
    them, in the shop's language) resolves, through the SKU map filled from PrestaShop's own tables,
    to the combination's reference."""
    s, shop = presta
    s.product("TEE", combinations=("TEE-RED-M", "TEE-BLUE-M"))
    s.run("UPDATE {p}product SET reference = 'TEE' WHERE id_product = %s", (s.items["TEE-RED-M"][0],))
    s.run("INSERT INTO {p}attribute (id_attribute, id_attribute_group) VALUES (1, 1), (2, 1), (3, 2)")
    s.run("INSERT INTO {p}attribute_group_lang (id_attribute_group, id_lang, name, public_name) VALUES "
          "(1, 1, 'Color (shirts)', 'Color'), (2, 1, 'Size', 'Size'), (1, 2, 'Couleur', 'Couleur')")
    s.run("INSERT INTO {p}attribute_lang (id_attribute, id_lang, name) VALUES "
          "(1, 1, 'Red'), (2, 1, 'Blue'), (3, 1, 'M'), (1, 2, 'Rouge')")
    for sku, color in (("TEE-RED-M", 1), ("TEE-BLUE-M", 2)):
        s.run("INSERT INTO {p}product_attribute_combination (id_attribute, id_product_attribute) "
              "VALUES (%s, %s), (3, %s)", (color, s.items[sku][1], s.items[sku][1]))
    sync(shop, {"TEE-RED-M": (6, 1), "TEE-BLUE-M": (2, 1)})
    with connect(clean_split.stocksync) as conn:
        assert import_variants(conn, shop.variant_skus()) == 2
        conn.commit()
        chosen = options_key([("Color", "Blue"), ("size", "m")])
        found = conn.execute("SELECT sku FROM stocksync.sku_map WHERE code = %s AND options_key = %s",
                             ("TEE", chosen)).fetchall()
    assert found == [("TEE-BLUE-M",)]
    assert shop.sellable("TEE-BLUE-M") == Sellable("TEE-BLUE-M", True, 2, 1)
