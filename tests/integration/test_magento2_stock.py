"""The magento2 adapter on a real MariaDB: what Magento's storefront sells after a sync equals an
expected-stock function written from the platform's rules, for the order states a Magento store
goes through and while checkouts and shipments keep coming.

`Store` below plays Magento the way Magento itself touches the tables (magento/inventory):
checkout checks the salable quantity and appends a `-qty` reservation named by the order's
increment id (no row lock); a shipment deducts the source item (refused when the source has less)
and appends the compensating `+qty`; a cancel and a credit memo compensate the units never
deducted; a credit memo returning shipped units to stock adds them to the source item. The
storefront's figure is read the way Magento computes it (index quantity + the stock's reservations
- effective min qty, 0 when the index says not salable; the default stock through the legacy
`cataloginventory_stock_status`). None of it calls the adapter.

`expected_salable` is the rule, from the test's own bookkeeping of what the WMS reported and which
orders it counted: the WMS's part is `max(0, WMS available - open units of the orders the WMS has
not counted)`, the stock's other in-stock sources at enabled sources add their quantity, the
effective min qty comes off, and without backorders the shopper never sees less than 0.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import MySQLdb
import pytest

from devstack.local_mariadb import LocalMariaDB
from include.stocksync.shop.magento2.adapter import Magento2Shop, acknowledge_orders, create_platform_schema
from include.stocksync.shop.port import StockWrite
from tests.integration.mariadb_shops import (
    ListSink,
    demand_query,
    mariadb_server,  # noqa: F401 (fixture)
    shop_dsn,
    sync,
)

PREFIX = "mg_"  # a store with a table prefix: every statement must carry it


# ------------------------------------------------------------------------------ the store

@dataclass
class Order:
    increment_id: str
    stock_id: int
    lines: dict[str, int]
    shipped: dict[str, int] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    refunded_unshipped: dict[str, int] = field(default_factory=dict)
    counted_by_wms: bool = False

    def open_units(self, sku: str) -> int:
        return (self.lines.get(sku, 0) - self.shipped.get(sku, 0) - self.cancelled.get(sku, 0)
                - self.refunded_unshipped.get(sku, 0))


class NotAvailable(Exception):
    """Magento's "Not all of your products are available in the requested quantity"."""


class Store:
    """A Magento 2 MSI store on MariaDB, driven the way Magento drives its tables."""

    def __init__(self, server: LocalMariaDB, database: str) -> None:
        self.server = server
        self.database = database
        self.p = PREFIX
        self.orders: dict[str, Order] = {}
        self.lock = threading.Lock()

    def conn(self) -> Any:
        conn = MySQLdb.connect(**self.server.connect_args(self.database))
        conn.autocommit(False)
        return conn

    def run(self, sql: str, params: Any = None, many: bool = False) -> None:
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                (cur.executemany if many else cur.execute)(sql.replace("{p}", self.p), params)
            conn.commit()
        finally:
            conn.close()

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("{p}", self.p), params)
                return list(cur.fetchall())
        finally:
            conn.close()

    # -- catalog and inventory set-up (Magento admin) ----------------------------------------
    def product(self, sku: str, type_id: str = "simple", backorders: int | None = None,
                min_qty: float | None = None) -> int:
        self.run("INSERT INTO {p}catalog_product_entity (sku, type_id) VALUES (%s, %s)", (sku, type_id))
        (entity_id,) = self.rows("SELECT entity_id FROM {p}catalog_product_entity WHERE sku = %s", (sku,))[0]
        self.run("INSERT INTO {p}cataloginventory_stock_item (product_id, stock_id, website_id, qty, min_qty, "
                 "use_config_min_qty, backorders, use_config_backorders, is_in_stock) "
                 "VALUES (%s, 1, 0, 0, %s, %s, %s, %s, 0)",
                 (entity_id, min_qty or 0, int(min_qty is None), backorders or 0, int(backorders is None)))
        return int(entity_id)

    def source(self, code: str, enabled: bool = True) -> None:
        self.run("INSERT INTO {p}inventory_source (source_code, name, enabled) VALUES (%s, %s, %s)",
                 (code, code, int(enabled)))

    def stock(self, stock_id: int, sources: list[str]) -> None:
        self.run("INSERT IGNORE INTO {p}inventory_stock (stock_id, name) VALUES (%s, %s)", (stock_id, f"s{stock_id}"))
        for priority, code in enumerate(sources):
            self.run("INSERT INTO {p}inventory_source_stock_link (stock_id, source_code, priority) "
                     "VALUES (%s, %s, %s)", (stock_id, code, priority))

    def source_item(self, code: str, sku: str, quantity: float, status: int) -> None:
        """A source item saved in the admin (for a non-WMS source; the index is refreshed by the
        test through `reindex`)."""
        self.run("INSERT INTO {p}inventory_source_item (source_code, sku, quantity, status) VALUES (%s, %s, %s, %s) "
                 "ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), status = VALUES(status)",
                 (code, sku, quantity, status))

    # -- the storefront -------------------------------------------------------------------------
    def salable(self, sku: str, stock_id: int) -> float:
        """Magento's salable quantity (GetProductSalableQty), 0 when the index says not salable."""
        if stock_id == 1:
            found = self.rows("SELECT ss.qty, ss.stock_status FROM {p}cataloginventory_stock_status ss "
                              "JOIN {p}catalog_product_entity e ON e.entity_id = ss.product_id "
                              "WHERE e.sku = %s AND ss.stock_id = 1 AND ss.website_id = 0", (sku,))
        else:
            found = self.rows(f"SELECT quantity, is_salable FROM {{p}}inventory_stock_{int(stock_id)} WHERE sku = %s",
                              (sku,))
        if not found or not found[0][1]:
            return 0.0
        qty = float(found[0][0])
        (reserved,) = self.rows("SELECT COALESCE(SUM(quantity), 0) FROM {p}inventory_reservation "
                                "WHERE stock_id = %s AND sku = %s", (stock_id, sku))[0]
        backorders, min_qty = self.rows(
            "SELECT IF(csi.use_config_backorders = 1, 0, csi.backorders), "
            "IF(csi.use_config_min_qty = 1, 0, csi.min_qty) "
            "FROM {p}cataloginventory_stock_item csi JOIN {p}catalog_product_entity e ON e.entity_id = csi.product_id "
            "WHERE e.sku = %s AND csi.stock_id = 1", (sku,))[0]
        effective_min = min(float(min_qty), 0.0) if backorders else max(float(min_qty), 0.0)
        return qty + float(reserved) - effective_min

    def source_quantity(self, code: str, sku: str) -> float:
        found = self.rows("SELECT quantity FROM {p}inventory_source_item WHERE source_code = %s AND sku = %s",
                          (code, sku))
        return float(found[0][0]) if found else 0.0

    # -- order life cycle, the platform's way -----------------------------------------------------
    def _reserve(self, cur: Any, stock_id: int, sku: str, qty: float, event: str, increment_id: str,
                 object_id: str) -> None:
        metadata = json.dumps({"event_type": event, "object_type": "order", "object_id": object_id,
                               "object_increment_id": increment_id})
        cur.execute(f"INSERT INTO {self.p}inventory_reservation (stock_id, sku, quantity, metadata) "
                    "VALUES (%s, %s, %s, %s)", (stock_id, sku, qty, metadata))

    def _legacy_follows(self, cur: Any, source_code: str, sku: str) -> None:
        """A default-source item saved by Magento also sets the legacy stock item and its stock
        status (MSI's SetDataToLegacyCatalogInventory and the legacy stock indexer)."""
        if source_code != "default":
            return
        for table in ("cataloginventory_stock_item", "cataloginventory_stock_status"):
            column = "is_in_stock" if table == "cataloginventory_stock_item" else "stock_status"
            cur.execute(f"UPDATE {self.p}{table} t JOIN {self.p}catalog_product_entity e ON e.entity_id = t.product_id "
                        f"JOIN {self.p}inventory_source_item si ON si.sku = e.sku AND si.source_code = 'default' "
                        f"SET t.qty = si.quantity, t.{column} = si.status WHERE e.sku = %s AND t.stock_id = 1", (sku,))

    def place_order(self, increment_id: str, stock_id: int, lines: dict[str, int]) -> bool:
        """Checkout: the salable check, then the reservation (written before the order is saved, so
        its object_id is empty), then the order. No lock, as in Magento."""
        for sku, qty in lines.items():
            if self.salable(sku, stock_id) < qty:
                return False
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                for sku, qty in lines.items():
                    self._reserve(cur, stock_id, sku, -qty, "order_placed", increment_id, "")
                cur.execute(f"INSERT INTO {self.p}sales_order (state, status, increment_id, store_id) "
                            "VALUES ('new', 'pending', %s, 1)", (increment_id,))
                order_id = cur.lastrowid
                for sku, qty in lines.items():
                    cur.execute(f"INSERT INTO {self.p}sales_order_item (order_id, sku, product_type, qty_ordered) "
                                "VALUES (%s, %s, 'simple', %s)", (order_id, sku, qty))
            conn.commit()
        finally:
            conn.close()
        with self.lock:
            self.orders[increment_id] = Order(increment_id, stock_id, dict(lines))
        return True

    def ship(self, increment_id: str, source_code: str, lines: dict[str, int],
             lock_wait_seconds: int | None = None) -> None:
        """A shipment: the source deduction (refused when the source has less), then the
        compensating reservation, in one transaction (waiting at most `lock_wait_seconds` for a row
        lock when given: MariaDB's error 1205 then)."""
        order = self.orders[increment_id]
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                if lock_wait_seconds is not None:
                    cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (lock_wait_seconds,))
                for sku, qty in lines.items():
                    cur.execute(f"UPDATE {self.p}inventory_source_item SET quantity = quantity - %s "
                                "WHERE source_code = %s AND sku = %s AND quantity >= %s", (qty, source_code, sku, qty))
                    if cur.rowcount != 1:
                        raise NotAvailable(f"Not all of your products are available in the requested quantity: {sku}")
                    self._legacy_follows(cur, source_code, sku)
                    self._reserve(cur, order.stock_id, sku, qty, "shipment_created", increment_id, "1")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()
        with self.lock:
            for sku, qty in lines.items():
                order.shipped[sku] = order.shipped.get(sku, 0) + qty

    def cancel(self, increment_id: str, lines: dict[str, int]) -> None:
        order = self.orders[increment_id]
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                for sku, qty in lines.items():
                    self._reserve(cur, order.stock_id, sku, qty, "order_canceled", increment_id, "1")
            conn.commit()
        finally:
            conn.close()
        for sku, qty in lines.items():
            order.cancelled[sku] = order.cancelled.get(sku, 0) + qty

    def credit_memo(self, increment_id: str, source_code: str, unshipped: dict[str, int],
                    returned_to_stock: dict[str, int]) -> None:
        """Refund: units never shipped are compensated in the reservations; shipped units returned
        to stock go back to the source item."""
        order = self.orders[increment_id]
        conn = self.conn()
        try:
            with conn.cursor() as cur:
                for sku, qty in unshipped.items():
                    self._reserve(cur, order.stock_id, sku, qty, "creditmemo_created", increment_id, "1")
                for sku, qty in returned_to_stock.items():
                    cur.execute(f"UPDATE {self.p}inventory_source_item SET quantity = quantity + %s "
                                "WHERE source_code = %s AND sku = %s", (qty, source_code, sku))
                    self._legacy_follows(cur, source_code, sku)
            conn.commit()
        finally:
            conn.close()
        for sku, qty in unshipped.items():
            order.refunded_unshipped[sku] = order.refunded_unshipped.get(sku, 0) + qty

    def reindex(self, stock_id: int, skus: list[str]) -> None:
        """MSI's indexer for a non-default stock (what the merchant's cron does after an admin save)."""
        for sku in skus:
            parts = self.rows("SELECT si.quantity, si.status, src.enabled FROM {p}inventory_source_item si "
                              "JOIN {p}inventory_source_stock_link l ON l.source_code = si.source_code "
                              "JOIN {p}inventory_source src ON src.source_code = si.source_code "
                              "WHERE l.stock_id = %s AND si.sku = %s", (stock_id, sku))
            qty = sum(float(q) for q, status, enabled in parts if status == 1 and enabled == 1)
            in_stock = any(status == 1 and enabled == 1 for _, status, enabled in parts)
            self.run(f"INSERT INTO {{p}}inventory_stock_{int(stock_id)} (sku, quantity, is_salable) "
                     "VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), "
                     "is_salable = VALUES(is_salable)", (sku, qty, int(in_stock and qty > 0)))


# ----------------------------------------------------------------------- the expected figure

def expected_salable(store: Store, sku: str, stock_id: int, wms_available: int, other_sources: float = 0.0,
                     backorders: bool = False, min_qty: float = 0.0) -> float:
    """The rule, from the WMS's figure and the test's own order book (not from the adapter)."""
    uncounted = sum(o.open_units(sku) for o in store.orders.values()
                    if o.stock_id == stock_id and not o.counted_by_wms)
    wms_part = max(0, wms_available - uncounted)
    effective_min = min(min_qty, 0.0) if backorders else max(min_qty, 0.0)
    salable = wms_part + other_sources - effective_min
    return salable if backorders else max(0.0, salable)


def counted(shop: Magento2Shop, store: Store, *increment_ids: str) -> None:
    """The WMS acknowledged these orders (it counts them in its allocation from now on)."""
    acknowledge_orders(shop, {i: datetime.now(UTC) - timedelta(minutes=5) for i in increment_ids})
    for increment_id in increment_ids:
        store.orders[increment_id].counted_by_wms = True


@pytest.fixture
def store(mariadb: LocalMariaDB, request: pytest.FixtureRequest) -> Iterator[tuple[Store, Magento2Shop]]:
    database = "mg_" + request.node.name.replace("test_", "")[:40].replace("[", "_").replace("]", "")
    mariadb.drop_database(database)
    mariadb.create_database(database)
    shop = Magento2Shop(shop_dsn(mariadb, database), table_prefix=PREFIX, source_code="default")
    create_platform_schema(shop, stock_ids=(2,))
    shop.migrate()
    s = Store(mariadb, database)
    s.source("default")
    s.stock(1, ["default"])
    yield s, shop
    mariadb.drop_database(database)


# ------------------------------------------------------------------------------------ tests

def test_default_stock_order_states_match_the_expected_figure(store: tuple[Store, Magento2Shop]) -> None:
    """Each SKU is one state an order can be in; the storefront shows the expected figure for all."""
    s, shop = store
    for sku in ("PLAIN", "NEW", "COUNTED", "PARTSHIP", "PARTCANCEL", "WMSSHIPPED", "SHOPSHIPPED", "OTHERCHAN",
                "RETURNED", "REFUNDED", "SHORT", "FULLCANCEL", "TEE-RED-M"):
        s.product(sku)
    s.product("BACKO", backorders=1, min_qty=-5)
    s.product("MINQ", min_qty=2)
    s.product("TEE", type_id="configurable")  # the parent: no stock of its own, never in the WMS
    wms: dict[str, int] = {"PLAIN": 10, "NEW": 10, "COUNTED": 6, "PARTSHIP": 8, "PARTCANCEL": 7, "WMSSHIPPED": 0,
                           "SHOPSHIPPED": 10, "OTHERCHAN": 4, "RETURNED": 9, "REFUNDED": 5, "SHORT": 1,
                           "FULLCANCEL": 3, "TEE-RED-M": 6, "BACKO": 0, "MINQ": 10}
    # a first sync gives every SKU its stock
    assert set(sync(shop, {sku: (qty + 20, 1) for sku, qty in wms.items()})) == set(wms)

    assert s.place_order("100000001", 1, {"NEW": 3})                     # new, the WMS has not seen it
    assert s.place_order("100000002", 1, {"COUNTED": 4})                 # the WMS allocated it
    assert s.place_order("100000003", 1, {"PARTSHIP": 5})                # counted, 2 shipped by the shop
    assert s.place_order("100000004", 1, {"PARTCANCEL": 4})              # counted, 1 cancelled
    assert s.place_order("100000005", 1, {"WMSSHIPPED": 5})              # shipped by the WMS, not yet by the shop
    assert s.place_order("100000006", 1, {"SHOPSHIPPED": 2})             # shipped by the shop before the WMS knew
    assert s.place_order("100000007", 1, {"RETURNED": 2})                # counted, shipped, refunded, back to stock
    assert s.place_order("100000008", 1, {"REFUNDED": 3})                # counted, refunded before shipping
    assert s.place_order("100000009", 1, {"SHORT": 3})                   # more uncounted units than the WMS has
    assert s.place_order("100000010", 1, {"FULLCANCEL": 2})              # counted, cancelled in full
    assert s.place_order("100000011", 1, {"TEE-RED-M": 2})               # a configurable's child
    assert s.place_order("100000012", 1, {"BACKO": 2})                   # backorderable, uncounted
    assert s.place_order("100000013", 1, {"MINQ": 1})                    # min qty 2, uncounted
    s.ship("100000003", "default", {"PARTSHIP": 2})
    s.cancel("100000004", {"PARTCANCEL": 1})
    s.ship("100000006", "default", {"SHOPSHIPPED": 2})
    s.ship("100000007", "default", {"RETURNED": 2})
    s.credit_memo("100000007", "default", unshipped={}, returned_to_stock={"RETURNED": 2})
    s.credit_memo("100000008", "default", unshipped={"REFUNDED": 3}, returned_to_stock={})
    s.cancel("100000010", {"FULLCANCEL": 2})
    counted(shop, s, "100000002", "100000003", "100000004", "100000005", "100000007", "100000008", "100000010")

    sync(shop, {sku: (qty, 2) for sku, qty in wms.items()})

    wrong = {}
    for sku, available in wms.items():
        kwargs: dict[str, Any] = {}
        if sku == "BACKO":
            kwargs = {"backorders": True, "min_qty": -5}
        if sku == "MINQ":
            kwargs = {"min_qty": 2}
        want = expected_salable(s, sku, 1, available, **kwargs)
        got = s.salable(sku, 1)
        if got != want:
            wrong[sku] = (got, want)
    assert wrong == {}
    # spot checks worked out by hand
    assert s.salable("NEW", 1) == 7 and s.salable("COUNTED", 1) == 6 and s.salable("SHORT", 1) == 0
    assert s.salable("BACKO", 1) == 5 and s.salable("MINQ", 1) == 7
    # the parent configurable got no source item of its own
    assert s.rows("SELECT COUNT(*) FROM {p}inventory_source_item WHERE sku = 'TEE'")[0][0] == 0
    # the legacy stock item carries the source quantity, as Magento's own save keeps it
    legacy = s.rows("SELECT csi.qty, csi.is_in_stock FROM {p}cataloginventory_stock_item csi "
                    "JOIN {p}catalog_product_entity e ON e.entity_id = csi.product_id WHERE e.sku = 'WMSSHIPPED'")
    assert (float(legacy[0][0]), legacy[0][1]) == (5.0, 1)
    # shipped by the WMS, not yet by the shop: Magento's later shipment finds the units in the source
    s.ship("100000005", "default", {"WMSSHIPPED": 5})
    assert s.salable("WMSSHIPPED", 1) == expected_salable(s, "WMSSHIPPED", 1, 0) == 0


def test_multi_source_stock_adds_a_counted_order_back_once(store: tuple[Store, Magento2Shop],
                                                           mariadb: LocalMariaDB) -> None:
    """A second stock with the WMS's source, an in-stock shelf, a disabled source and a shelf item
    with status 0: only enabled, in-stock items count, and a counted order is added back once."""
    s, default_shop = store
    shop = Magento2Shop(shop_dsn(mariadb, s.database), table_prefix=PREFIX, source_code="wms")
    for code, enabled in (("wms", True), ("shelf", True), ("closed", False), ("shelf0", True)):
        s.source(code, enabled)
    s.stock(2, ["wms", "shelf", "closed", "shelf0"])
    for sku in ("MS-1", "MS-2"):
        s.product(sku)
        s.source_item("shelf", sku, 4, 1)
        s.source_item("closed", sku, 9, 1)
        s.source_item("shelf0", sku, 7, 0)
    sync(shop, {"MS-1": (30, 1), "MS-2": (30, 1)})
    assert s.place_order("200000001", 2, {"MS-1": 3})  # the WMS counts it
    assert s.place_order("200000002", 2, {"MS-1": 2})  # it does not
    assert s.place_order("200000003", 2, {"MS-2": 5})  # counted, then partly shipped from the WMS's source
    s.ship("200000003", "wms", {"MS-2": 1})
    counted(shop, s, "200000001", "200000003")
    sync(shop, {"MS-1": (27, 2), "MS-2": (26, 2)})
    for sku, available in (("MS-1", 27), ("MS-2", 26)):
        assert s.salable(sku, 2) == expected_salable(s, sku, 2, available, other_sources=4)
    assert s.salable("MS-1", 2) == 27 - 2 + 4
    # the WMS's source holds the WMS figure plus the counted order's open units, once (27 + 3)
    assert s.source_quantity("wms", "MS-1") == 30


def test_sequence_guard_duplicates_and_rollback(store: tuple[Store, Magento2Shop]) -> None:
    s, shop = store
    s.product("SEQ-1")
    s.product("SEQ-2")
    assert sync(shop, {"SEQ-1": (10, 5), "SEQ-2": (10, 5)}) == ["SEQ-1", "SEQ-2"]
    assert sync(shop, {"SEQ-1": (10, 5), "SEQ-2": (10, 5)}) == []          # the same snapshot again
    assert sync(shop, {"SEQ-1": (3, 4), "SEQ-2": (4, 6)}) == ["SEQ-2"]      # SEQ-1's update is older
    assert (s.salable("SEQ-1", 1), s.salable("SEQ-2", 1)) == (10, 4)
    assert sync(shop, {"UNKNOWN": (5, 9)}) == []                            # not in the catalog: never written
    with pytest.raises(RuntimeError, match="half-way"):
        with shop.apply_session(lock_timeout_seconds=5) as session:
            session.write_stock([StockWrite("SEQ-1", 1, 7), StockWrite("SEQ-2", 1, 7)])
            raise RuntimeError("the run fails half-way")
    assert (s.salable("SEQ-1", 1), s.salable("SEQ-2", 1)) == (10, 4)       # all old
    stock = ListSink()
    shop.stream_stock(stock)
    assert sorted(stock.rows) == [("SEQ-1", 10, 5), ("SEQ-2", 4, 6)]


def test_concurrent_checkouts_and_shipments_leave_no_sku_wrong(store: tuple[Store, Magento2Shop]) -> None:
    """8 checkout connections place orders the Magento way (salable check, then a reservation, no
    lock) and a shipper ships the orders the WMS counted, while the sync applies again and again.
    Afterwards every SKU shows max(0, WMS available - every uncounted order's units), and most SKUs
    kept stock throughout (a figure clamped to 0 would hide a wrong adjustment)."""
    s, shop = store
    skus = [f"HOT-{i:02d}" for i in range(40)]
    for sku in skus:
        s.product(sku)
    available = {sku: 120 for sku in skus}
    sync(shop, {sku: (available[sku] + 2, 1) for sku in skus})
    for i, sku in enumerate(skus):  # one order per SKU the WMS already counted, to be shipped meanwhile
        assert s.place_order(f"3{i:08d}", 1, {sku: 2})
    counted(shop, s, *(f"3{i:08d}" for i in range(len(skus))))

    errors: list[BaseException] = []

    def checkout(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(40):
                s.place_order(f"9{worker:02d}{n:05d}", 1, {rng.choice(skus): rng.randint(1, 3)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def shipper() -> None:
        try:
            for i, sku in enumerate(skus):
                s.ship(f"3{i:08d}", "default", {sku: 2})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=checkout, args=(w,)) for w in range(8)] + [threading.Thread(target=shipper)]
    for t in threads:
        t.start()
    seq = 2
    while any(t.is_alive() for t in threads):
        sync(shop, {sku: (available[sku], seq) for sku in skus})
        seq += 1
    for t in threads:
        t.join()
    assert errors == []
    placed = [o for o in s.orders.values() if not o.counted_by_wms]
    assert len(placed) > 100
    wrong = {sku: (s.salable(sku, 1), expected_salable(s, sku, 1, available[sku])) for sku in skus}
    wrong = {sku: pair for sku, pair in wrong.items() if pair[0] != pair[1]}
    assert wrong == {}
    assert sum(1 for sku in skus if s.salable(sku, 1) > 0) >= 30


def test_a_write_racing_a_new_order_and_a_shipment(store: tuple[Store, Magento2Shop]) -> None:
    """Between the demand read and the write, a shopper checks out (Magento does not wait) and a
    shipment of a counted order lands (nothing is locked before the write, which locks only the
    source items it writes): the new order is taken off the written figure once, and the shipped
    units, already deducted from the source, are not added back."""
    s, shop = store
    s.product("RACE")
    sync(shop, {"RACE": (50, 1)})
    assert s.place_order("400000001", 1, {"RACE": 4})  # counted: the WMS figure below already excludes it
    assert s.place_order("400000002", 1, {"RACE": 3})  # not counted
    counted(shop, s, "400000001")
    errors: list[BaseException] = []

    def ship_counted() -> None:
        try:
            s.ship("400000001", "default", {"RACE": 4})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    shipment = threading.Thread(target=ship_counted)
    with shop.apply_session(lock_timeout_seconds=30) as session:
        sink = ListSink()
        session.stream_demand(demand_query(datetime.now(UTC)), sink)
        assert sink.rows == [("RACE", 3, 0)]
        assert s.place_order("400000003", 1, {"RACE": 5})  # a checkout racing the write
        shipment.start()
        shipment.join()
        assert errors == []
        session.write_stock([StockWrite("RACE", 40 - 3, 2)])
    shipment.join()
    assert errors == []
    assert s.salable("RACE", 1) == expected_salable(s, "RACE", 1, 40) == 40 - 3 - 5


def test_the_apply_locks_only_the_source_items_it_writes(store: tuple[Store, Magento2Shop]) -> None:
    """A shipment of a SKU the apply does not write goes through while the apply's transaction is
    open; a shipment of a SKU it wrote waits for the commit and deducts from the written figure."""
    s, shop = store
    s.product("KEEP")
    s.product("MOVE")
    sync(shop, {"KEEP": (30, 1), "MOVE": (30, 1)})
    for increment_id, sku in (("500000001", "KEEP"), ("500000002", "MOVE")):
        assert s.place_order(increment_id, 1, {sku: 2})
        counted(shop, s, increment_id)
    with shop.apply_session(lock_timeout_seconds=30) as session:
        session.stream_demand(demand_query(datetime.now(UTC)), ListSink())
        assert session.write_stock([StockWrite("MOVE", 20, 2)]) == ["MOVE"]
        # KEEP is not written: its shipment goes through while the apply is open (a wait on the
        # apply's locks would end in error 1205 after 1 s)
        s.ship("500000001", "default", {"KEEP": 2}, lock_wait_seconds=1)
        # MOVE is written: its shipment waits for the apply's lock on MOVE's source item
        with pytest.raises(MySQLdb.OperationalError) as waited:
            s.ship("500000002", "default", {"MOVE": 2}, lock_wait_seconds=1)
        assert waited.value.args[0] == 1205, waited.value  # ER_LOCK_WAIT_TIMEOUT
    s.ship("500000002", "default", {"MOVE": 2}, lock_wait_seconds=1)  # after the commit
    # KEEP: 30 at the last sync, its counted order shipped; MOVE: 20 written, its counted order shipped
    assert s.salable("KEEP", 1) == expected_salable(s, "KEEP", 1, 30 - 2) == 28
    assert s.salable("MOVE", 1) == expected_salable(s, "MOVE", 1, 20) == 20


# ------------------------------------------------------------------- odd data in a real store

@pytest.mark.parametrize("spelling", ["tee-m", "TEE-M "], ids=["lower-case", "trailing-space"])
def test_a_reservation_spelled_otherwise_than_the_catalog_still_counts(store: tuple[Store, Magento2Shop],
                                                                      spelling: str) -> None:
    """An uncounted order whose reservation names the SKU in another letter case or with a trailing
    space (placed before a case-only rename, written by an import): Magento counts it against TEE-M
    (MariaDB's collation ignores both), so stocksync must take it off too. With a second order
    spelled right, both come off (one odd row used to hide every order of the SKU)."""
    s, shop = store
    s.product("TEE-M")
    sync(shop, {"TEE-M": (20, 1)})
    conn = s.conn()
    try:
        with conn.cursor() as cur:
            s._reserve(cur, 1, spelling, -1, "order_placed", "100000001", "")
            cur.execute(f"INSERT INTO {PREFIX}sales_order (state, status, increment_id, store_id) "
                        "VALUES ('new', 'pending', '100000001', 1)")
            cur.execute(f"INSERT INTO {PREFIX}sales_order_item (order_id, sku, product_type, qty_ordered) "
                        "VALUES (%s, %s, 'simple', 1)", (cur.lastrowid, spelling))
        conn.commit()
    finally:
        conn.close()
    s.orders["100000001"] = Order("100000001", 1, {"TEE-M": 1})  # the book knows the product it is
    assert s.place_order("100000002", 1, {"TEE-M": 3})
    assert s.salable("TEE-M", 1) == 16  # Magento's own figure: both orders count

    sync(shop, {"TEE-M": (20, 2)})

    assert s.salable("TEE-M", 1) == expected_salable(s, "TEE-M", 1, 20) == 16


def test_a_database_whose_default_collation_is_not_its_tables(store: tuple[Store, Magento2Shop]) -> None:
    """The store's tables keep their own collation while the database's default differs (a hosting
    panel's, MariaDB 11's uca1400): stocksync's temporary tables compare with the tables, so the
    apply and the live write-back work (they failed on "Illegal mix of collations")."""
    s, shop = store
    for sku in ("COLL", "LIVE"):
        s.product(sku)
    sync(shop, {"COLL": (10, 1), "LIVE": (10, 1)})
    assert s.place_order("100000001", 1, {"COLL": 1})
    s.run(f"ALTER DATABASE `{s.database}` COLLATE utf8mb4_unicode_ci")
    fresh = Magento2Shop(shop_dsn(s.server, s.database), table_prefix=PREFIX, source_code="default")

    assert sync(fresh, {"COLL": (12, 2)}) == ["COLL"]
    with fresh.live_session("LIVE", lock_timeout_seconds=5) as live:
        live.demand(demand_query(datetime.now(UTC)))
        assert live.write(8, 2) is not None

    assert s.salable("COLL", 1) == expected_salable(s, "COLL", 1, 12) == 11
    assert s.salable("LIVE", 1) == 8


def test_a_fractional_source_quantity_is_read_in_whole_units_rounded_down(store: tuple[Store, Magento2Shop]) -> None:
    """A source item of 0.5 (a decimal-quantity product, a merchant's edit) sells no whole unit: the
    sellable figure stocksync reads (the availability service's, drift's) is 0, not 0.5 rounded up."""
    s, shop = store
    s.product("HALF")
    sync(shop, {"HALF": (1, 1)})
    s.run("UPDATE {p}inventory_source_item SET quantity = 0.5 WHERE sku = 'HALF'")
    stock = ListSink()
    shop.stream_stock(stock)
    sellable = shop.sellable("HALF")
    assert stock.rows == [("HALF", 0, 1)]
    assert sellable is not None and sellable.qty == 0


def test_a_figure_beyond_magentos_quantity_column_is_refused_naming_the_sku(store: tuple[Store, Magento2Shop]) -> None:
    """stocksync takes WMS figures up to max_quantity (1e9); Magento's quantity columns hold less
    than 1e8. The apply is refused before it writes anything, naming the SKU and the setting, not
    with MariaDB's out-of-range error on a temporary column (which was counted as transient and
    retried)."""
    from include.stocksync.domain.errors import is_permanent
    from include.stocksync.shop.port import ShopContractError

    s, shop = store
    for sku in ("BIG", "SMALL"):
        s.product(sku)
    sync(shop, {"BIG": (10, 1), "SMALL": (10, 1)})
    with pytest.raises(ShopContractError) as refused:
        sync(shop, {"BIG": (100_000_000, 2), "SMALL": (5, 2)})
    assert is_permanent(refused.value)
    assert "BIG (100,000,000)" in str(refused.value) and "max_quantity" in str(refused.value)
    assert (s.salable("BIG", 1), s.salable("SMALL", 1)) == (10, 10)  # nothing written


def test_a_connection_killed_under_the_apply_keeps_its_classified_error(store: tuple[Store, Magento2Shop]) -> None:
    """The apply's MariaDB connection killed (a failover, a DBA's KILL): the error that reaches the
    run is the classified one (transient, saying what was being done), not the driver's "Server has
    gone away" from rolling back on the dead connection."""
    from include.stocksync.domain.errors import is_permanent
    from include.stocksync.shop.port import ShopUnavailable

    s, shop = store
    s.product("KILLED")
    sync(shop, {"KILLED": (5, 1)})
    with pytest.raises(ShopUnavailable) as lost:
        with shop.apply_session(lock_timeout_seconds=5) as session:
            s.run("KILL CONNECTION %s", (session.conn.thread_id(),))
            session.stream_demand(demand_query(datetime.now(UTC)), ListSink())
    assert not is_permanent(lost.value) and "reading Magento's reservations" in str(lost.value)
    assert s.salable("KILLED", 1) == 5
