"""The magento2 adapter's order push and live write-back on a real MariaDB.

Orders are written into `sales_order` / `sales_order_item` the way Magento stores them (a
configurable line is a parent item carrying the child's SKU plus the simple child item; a bundle is
a parent item with one child per component; cancels and refunds are recorded on the items), or
placed through the test store's checkout (`Store.place_order`: reservation, then the order). The
expected lines, statuses and figures are worked out here from those rows and from Magento's rules
(test_magento2_stock.expected_salable), not read back through the adapter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from include.stocksync.availability.skus import import_variants, options_key
from include.stocksync.shop.magento2.adapter import Magento2Shop, acknowledge_orders
from include.stocksync.shop.port import DemandRow, OrderLine, OrderRef, Sellable, ShopContractError, StockRow
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
from tests.integration.test_magento2_stock import Store, counted, expected_salable, store  # noqa: F401 (fixture)

UNSENT = ("placed", "paid")
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def magento(store: tuple[Store, Magento2Shop]) -> tuple[Store, Magento2Shop]:  # noqa: F811 (the imported fixture)
    """A Magento store of its own (a MariaDB database per test) and the adapter on it."""
    return store


def magento_order(s: Store, increment_id: str, status: str, items: list[tuple[Any, ...]],
                  created_at: datetime = CREATED, store_id: int = 1) -> int:
    """An order as Magento stores it (in store view `store_id`). `items`: (sku, product_type,
    qty_ordered, qty_canceled, qty_refunded, index of the parent item in `items` or None). Returns
    its entity id."""
    conn = s.conn()
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {s.p}sales_order (state, status, increment_id, store_id, created_at) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        (status, status, increment_id, store_id, created_at.astimezone(UTC).replace(tzinfo=None)))
            order_id = int(cur.lastrowid)
            item_ids: list[int] = []
            for sku, product_type, ordered, canceled, refunded, parent in items:
                cur.execute(f"INSERT INTO {s.p}sales_order_item (order_id, parent_item_id, product_type, sku, "
                            "qty_ordered, qty_canceled, qty_refunded) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (order_id, None if parent is None else item_ids[parent], product_type, sku, ordered,
                             canceled, refunded))
                item_ids.append(int(cur.lastrowid))
        conn.commit()
    finally:
        conn.close()
    return order_id


def entity_id(s: Store, increment_id: str) -> int:
    return int(s.rows("SELECT entity_id FROM {p}sales_order WHERE increment_id = %s", (increment_id,))[0][0])


def acks(s: Store) -> dict[str, datetime]:
    return {i: at.replace(tzinfo=UTC) for i, at in s.rows("SELECT increment_id, acknowledged_at "
                                                           "FROM {p}stocksync_order_ack_by_store")}


def test_order_push_reads_orders_lines_and_keeps_the_acknowledgement(magento: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    configurable = magento_order(s, "100000001", "pending", [
        ("TEE-M", "configurable", 2, 1, 0, None),   # the parent line (Magento records the cancel here)
        ("TEE-M", "simple", 2, 0, 0, 0),            # its child: the SKU the WMS knows
        ("SOCK", "simple", 3, 1, 0, None)])         # 3 ordered, 1 cancelled
    bundle = magento_order(s, "100000002", "processing", [
        ("KIT-CUP-LID", "bundle", 1, 0, 0, None),   # a bundle's parent line: no stock of its own
        ("CUP", "simple", 2, 0, 0, 0), ("LID", "simple", 2, 0, 0, 0),
        ("SOCK", "simple", 1, 0, 0, None),
        ("HAT", "simple", 1, 1, 0, None),           # cancelled in full: nothing to send
        ("SCARF", "simple", 2, 0, 1, None)])        # 1 refunded before it was sent
    magento_order(s, "100000003", "complete", [("SOCK", "simple", 1, 0, 0, None)])
    cancelled = magento_order(s, "100000004", "canceled", [("SOCK", "simple", 1, 0, 0, None)])
    known = magento_order(s, "100000005", "pending", [("SOCK", "simple", 1, 0, 0, None)])
    held = magento_order(s, "100000006", "holded", [("SOCK", "simple", 1, 0, 0, None)])
    acknowledge_orders(shop, {"100000004": earlier, "100000005": earlier})

    assert shop.unacknowledged_orders(UNSENT) == [OrderRef(configurable, CREATED), OrderRef(bundle, CREATED)]
    assert shop.cancelled_orders(("cancelled",)) == [OrderRef(cancelled, CREATED)]
    received = datetime(2026, 1, 3, 10, 0, 0, 123000, tzinfo=UTC)
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        lines = batch.order_lines([bundle, configurable])
        changed = batch.acknowledge([configurable, known], [received, received])
    assert lines == [OrderLine(configurable, "SOCK", 2), OrderLine(configurable, "TEE-M", 1),
                     OrderLine(bundle, "CUP", 2), OrderLine(bundle, "LID", 2), OrderLine(bundle, "SCARF", 1),
                     OrderLine(bundle, "SOCK", 1)]
    assert changed == [configurable]  # the known order keeps its first acknowledgement
    assert acks(s) == {"100000001": received, "100000004": earlier, "100000005": earlier}
    assert shop.unacknowledged_orders(UNSENT) == [OrderRef(bundle, CREATED)]

    with pytest.raises(ShopContractError, match="'lost'.*magento2 order_statuses"):
        shop.unacknowledged_orders(("placed", "lost"))
    merchant = Magento2Shop(shop_dsn(s.server, s.database), table_prefix=s.p,
                            order_statuses={"placed": ["pending", "holded"]})
    assert [o.order_id for o in merchant.unacknowledged_orders(("placed",))] == [held]


def test_two_store_views_with_the_same_increment_id_are_sent_and_acknowledged_apart(
        magento: tuple[Store, Magento2Shop]) -> None:
    """Magento's increment ids are unique per store view only (sales_order's unique key is
    (increment_id, store_id)): each store view's order is sent and acknowledged on its own, and the
    `store_ids` option limits the order push to the store views it names."""
    s, shop = magento
    first = magento_order(s, "000000001", "pending", [("SOCK", "simple", 1, 0, 0, None)], store_id=1)
    second = magento_order(s, "000000001", "pending", [("HAT", "simple", 2, 0, 0, None)], store_id=2)
    assert shop.unacknowledged_orders(UNSENT) == [OrderRef(first, CREATED), OrderRef(second, CREATED)]
    received = datetime(2026, 1, 3, 10, 0, tzinfo=UTC)
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        assert batch.order_lines([second]) == [OrderLine(second, "HAT", 2)]
        assert batch.acknowledge([first], [received]) == [first]
    # the other store view's order of the same number is still to be sent
    assert shop.unacknowledged_orders(UNSENT) == [OrderRef(second, CREATED)]
    assert s.rows("SELECT store_id, increment_id, acknowledged_at FROM {p}stocksync_order_ack_by_store") == [
        (1, "000000001", received.replace(tzinfo=None))]
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        assert batch.acknowledge([second, first], [received, received]) == [second]  # the first keeps its time
    assert shop.unacknowledged_orders(UNSENT) == []

    third = magento_order(s, "000000002", "pending", [("SOCK", "simple", 1, 0, 0, None)], store_id=2)
    fourth = magento_order(s, "000000002", "processing", [("SOCK", "simple", 1, 0, 0, None)], store_id=3)
    dsn = shop_dsn(s.server, s.database)
    views_2_and_3 = Magento2Shop(dsn, table_prefix=s.p, store_ids=[2, 3])
    assert views_2_and_3.unacknowledged_orders(UNSENT) == [OrderRef(third, CREATED), OrderRef(fourth, CREATED)]
    assert Magento2Shop(dsn, table_prefix=s.p, store_ids=[3]).unacknowledged_orders(UNSENT) == [
        OrderRef(fourth, CREATED)]
    assert Magento2Shop(dsn, table_prefix=s.p, store_ids=[1]).unacknowledged_orders(UNSENT) == []
    s.run("UPDATE {p}sales_order SET status = 'canceled' WHERE entity_id IN (%s, %s)", (first, second))
    assert shop.cancelled_orders(("cancelled",)) == [OrderRef(first, CREATED), OrderRef(second, CREATED)]
    assert views_2_and_3.cancelled_orders(("cancelled",)) == [OrderRef(second, CREATED)]
    with pytest.raises(ValueError, match="magento2 store_ids"):
        Magento2Shop(dsn, table_prefix=s.p, store_ids=[-1])


def test_an_increment_id_two_store_views_share_is_counted_once_both_are_acknowledged(
        magento: tuple[Store, Magento2Shop]) -> None:
    """A reservation names its order by increment id only: while one of the two store views' orders
    bearing it is unacknowledged, the WMS may not have those units, so none of them is added back."""
    s, shop = magento
    s.product("SHARED")
    sync(shop, {"SHARED": (20, 1)})
    conn = s.conn()
    try:  # MSI's checkout in each store view: the reservation (no store view in it), then the order
        with conn.cursor() as cur:
            for store_id, units in ((1, 3), (2, 2)):
                s._reserve(cur, 1, "SHARED", -units, "order_placed", "000000009", "")
                cur.execute(f"INSERT INTO {s.p}sales_order (state, status, increment_id, store_id) "
                            "VALUES ('new', 'pending', '000000009', %s)", (store_id,))
        conn.commit()
    finally:
        conn.close()
    orders = dict(s.rows("SELECT store_id, entity_id FROM {p}sales_order WHERE increment_id = '000000009'"))
    earlier = datetime.now(UTC) - timedelta(minutes=5)

    def unsent() -> list[tuple[Any, ...]]:
        sink = ListSink()
        shop.stream_demand(demand_query(datetime.now(UTC)), sink)
        return sink.rows

    assert unsent() == [("SHARED", 3 + 2, 0)]
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        batch.acknowledge([orders[1]], [earlier])
    assert unsent() == [("SHARED", 3 + 2, 0)]  # store view 2's order of that number is not counted yet
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        batch.acknowledge([orders[2]], [earlier])
    assert unsent() == []


def test_the_migration_moves_acknowledgements_to_the_orders_that_existed_then(
        magento: tuple[Store, Magento2Shop]) -> None:
    """Acknowledgements kept by increment id alone (before the store view was part of the key) move
    to the orders of that number created before the acknowledgement; a later order of another store
    view was never sent under it and is sent now."""
    s, shop = magento
    acknowledged = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    before = magento_order(s, "000000007", "processing", [("SOCK", "simple", 1, 0, 0, None)],
                           created_at=acknowledged - timedelta(hours=1), store_id=1)
    after = magento_order(s, "000000007", "pending", [("SOCK", "simple", 1, 0, 0, None)],
                          created_at=acknowledged + timedelta(hours=1), store_id=2)
    s.run("DROP TABLE {p}stocksync_order_ack_by_store")
    s.run("DELETE FROM {p}stocksync_migration WHERE version = '0002_order_ack_by_store'")
    s.run("INSERT INTO {p}stocksync_order_ack (increment_id, acknowledged_at) VALUES ('000000007', %s)",
          (acknowledged.replace(tzinfo=None),))
    assert Magento2Shop(shop_dsn(s.server, s.database), table_prefix=s.p).migrate() == ["0002_order_ack_by_store"]
    assert s.rows("SELECT store_id, increment_id, acknowledged_at FROM {p}stocksync_order_ack_by_store") == [
        (1, "000000007", acknowledged.replace(tzinfo=None))]
    assert [o.order_id for o in shop.unacknowledged_orders(UNSENT)] == [after]
    assert before != after


def test_a_failed_batch_acknowledges_nothing(magento: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento
    order = magento_order(s, "100000001", "pending", [("SOCK", "simple", 1, 0, 0, None)])
    with pytest.raises(RuntimeError):
        with shop.order_push_session(lock_timeout_seconds=5) as batch:
            assert batch.acknowledge([order], [datetime.now(UTC)]) == [order]
            raise RuntimeError("the WMS answered 500")
    assert acks(s) == {}
    assert shop.unacknowledged_orders(UNSENT) == [OrderRef(order, CREATED)]


def test_an_acknowledged_order_is_taken_off_once(magento: tuple[Store, Magento2Shop]) -> None:
    """An order acknowledged through the order push is counted by the WMS: the demand no longer
    holds it and the storefront shows the WMS's figure, the order's reservation added back once."""
    s, shop = magento
    s.product("RACE")
    sync(shop, {"RACE": (50, 1)})
    assert s.place_order("200000001", 1, {"RACE": 3})
    sink = ListSink()
    shop.stream_demand(demand_query(datetime.now(UTC)), sink)
    assert sink.rows == [("RACE", 3, 0)]
    with shop.order_push_session(lock_timeout_seconds=5) as batch:
        order = entity_id(s, "200000001")
        assert batch.order_lines([order]) == [OrderLine(order, "RACE", 3)]
        assert batch.acknowledge([order], [datetime.now(UTC) - timedelta(minutes=1)]) == [order]
    s.orders["200000001"].counted_by_wms = True
    sink = ListSink()
    shop.stream_demand(demand_query(datetime.now(UTC)), sink)
    assert sink.rows == []
    sync(shop, {"RACE": (47, 2)})  # the WMS allocated the 3 units: 50 - 3 available
    assert s.salable("RACE", 1) == expected_salable(s, "RACE", 1, 47) == 47


def test_the_order_push_lock_holds_an_apply_back_not_checkout(magento: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento
    s.product("LOCK")
    sync(shop, {"LOCK": (5, 1)})
    order_push_holds_back_an_apply_not_checkout(shop, lambda: s.place_order("300000001", 1, {"LOCK": 1}))


def test_live_write_back_adds_counted_orders_back_and_is_strictly_newer(magento: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento
    s.product("LIVE")
    s.product("NOSOURCE")
    sync(shop, {"LIVE": (50, 1)})
    assert s.place_order("400000001", 1, {"LIVE": 4})
    assert s.place_order("400000002", 1, {"LIVE": 3})
    counted(shop, s, "400000001")
    query = demand_query(datetime.now(UTC))
    with shop.live_session("LIVE", lock_timeout_seconds=5) as live:
        assert live.current == StockRow("LIVE", 50 - 4 - 3, 1)
        assert live.demand(query) == DemandRow("LIVE", 3, 0)
        assert live.write(40 - 3, 1) is None  # the same WMS sequence is already applied
        assert live.write(40 - 3, 2) == StockRow("LIVE", 37, 2)
    # the WMS's 40 already exclude the counted order: the storefront shows 40 less the uncounted 3
    assert s.salable("LIVE", 1) == expected_salable(s, "LIVE", 1, 40) == 37
    s.ship("400000001", "default", {"LIVE": 4})  # the counted order's units are in the source
    assert s.salable("LIVE", 1) == 37
    with shop.live_session("NOSOURCE", lock_timeout_seconds=5) as live:
        assert live.current is None
        assert live.demand(query) == DemandRow("NOSOURCE", 0, 0)
        assert live.write(5, 9) is None
    assert s.source_quantity("default", "NOSOURCE") == 0.0


def test_live_write_back_waits_for_the_apply(magento: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento
    s.product("WAIT")
    sync(shop, {"WAIT": (5, 1)})
    live_write_back_waits_for_an_apply(shop, "WAIT")


def test_configurable_children_fill_the_sku_map(magento: tuple[Store, Magento2Shop],
                                                clean_split: SplitDatabases) -> None:
    """A shopper's choice on a configurable product page (its SKU + the options as the form sends
    them) resolves, through the SKU map filled from Magento's own tables, to the simple child."""
    s, shop = magento
    parent = s.product("TEE", type_id="configurable")
    children = {("Red", "M"): s.product("TEE-RED-M"), ("Blue", "M"): s.product("TEE-BLUE-M"),
                ("Red", "L"): s.product("TEE-RED-L")}
    s.product("MUG")  # a simple product: no variants
    s.run("INSERT INTO {p}eav_attribute (attribute_id, entity_type_id, attribute_code, frontend_label) "
          "VALUES (93, 4, 'color', 'Color'), (144, 4, 'size', 'Size')")
    s.run("INSERT INTO {p}catalog_product_super_attribute (product_id, attribute_id) VALUES (%s, 93), (%s, 144)",
          (parent, parent))
    s.run("INSERT INTO {p}eav_attribute_option_value (option_id, store_id, value) VALUES "
          "(4, 0, 'Red'), (5, 0, 'Blue'), (6, 0, 'M'), (7, 0, 'L'), (4, 1, 'Rouge')")
    option = {"Red": 4, "Blue": 5, "M": 6, "L": 7}
    for (color, size), child in children.items():
        s.run("INSERT INTO {p}catalog_product_super_link (product_id, parent_id) VALUES (%s, %s)", (child, parent))
        s.run("INSERT INTO {p}catalog_product_entity_int (attribute_id, store_id, entity_id, value) "
              "VALUES (93, 0, %s, %s), (144, 0, %s, %s)", (child, option[color], child, option[size]))
    sync(shop, {"TEE-RED-M": (4, 1), "TEE-BLUE-M": (0, 1), "TEE-RED-L": (9, 1)})
    with connect(clean_split.stocksync) as conn:
        assert import_variants(conn, shop.variant_skus()) == 3
        conn.commit()
        chosen = options_key([("size", " m "), ("COLOR", "red")])  # as the product page's form sends them
        found = conn.execute("SELECT sku FROM stocksync.sku_map WHERE code = %s AND options_key = %s",
                             ("TEE", chosen)).fetchall()
        assert conn.execute("SELECT count(*) FROM stocksync.sku_map WHERE code = 'MUG'").fetchone() == (0,)
    assert found == [("TEE-RED-M",)]
    assert shop.sellable("TEE-RED-M") == Sellable("TEE-RED-M", True, 4, 1)
    assert shop.sellable("TEE") == Sellable("TEE", False, None, None)  # the parent sells nothing itself
