"""The shop port's contract (include/stocksync/shop/port.py), run against every registered adapter.

`ShopPortContract` is the reusable part: any adapter passes it given a `harness` fixture (the port,
a way to seed the platform's own tables from one neutral `ShopSeed`, its checkout, and a read of
its stock that does not go through the port). The `harness` fixture below is parameterised over
`shop/registry.py`'s platforms; a new platform adds its harness to `HARNESSES` (a test fails while
one is missing).

Each adapter's shop lives in a database of its own, apart from stocksync's: the bulk reads are
COPYed into tables of stocksync's test database, as the sync does. The expected answers are worked
out by hand from the seed (domain rule 1: uncounted orders, carts), not from stocksync's code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
import pytest
from psycopg import sql

from devstack.local_mariadb import LocalMariaDB
from devstack.local_pg import LocalPostgres
from include.stocksync.shop.mysql_family import MySQLShop
from include.stocksync.shop.port import (
    ActiveFreeze,
    DemandQuery,
    DemandRow,
    InPlaceApply,
    InPlaceShop,
    OrderLine,
    Sellable,
    ShopContractError,
    ShopPort,
    ShopUnavailable,
    StockRow,
    StockWrite,
    in_place_reads,
)
from include.stocksync.shop.registry import PLATFORMS, UnknownShopPlatform, open_shop
from include.stocksync.store.db import REFERENCE_SHOP_ADAPTER
from tests.integration.mariadb_shops import (
    mariadb_server,  # noqa: F401 (the `mariadb` fixture)
    store_rows,
    store_transaction,
)
from tests.integration.mariadb_shops import shop_dsn as mariadb_dsn

SHOP_DATABASE = "shop_port_contract"
UNSENT = ("placed", "paid")
HOUR = 3600.0


@dataclass(frozen=True)
class SeedOrder:
    key: str
    status: str
    age_hours: float
    acknowledged_hours_ago: float | None  # None: the WMS never acknowledged it
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ShopSeed:
    """A small shop, platform-neutral. The watermark of the demand tests is two hours ago."""

    products: tuple[tuple[str, bool], ...] = (("SKU-A", True), ("SKU-B", True), ("SKU-C", False), ("SKU-D", True))
    # (sku, qty, wms_seq); SKU-D has no stock row yet
    stock: tuple[tuple[str, int, int], ...] = (("SKU-A", 10, 5), ("SKU-B", 4, 2), ("SKU-C", 0, 1))
    orders: tuple[SeedOrder, ...] = (
        SeedOrder("o1", "placed", 0.1, None, (("SKU-A", 2), ("SKU-B", 1))),   # counted
        SeedOrder("o2", "paid", 0.5, 1.0, (("SKU-A", 3),)),                   # acked after the mark: counted
        SeedOrder("o3", "placed", 5.0, 3.0, (("SKU-B", 2),)),                 # acked before the mark: not
        SeedOrder("o4", "cancelled", 6.0, 4.0, (("SKU-B", 1),)),              # status: not; cancelled after ack
        SeedOrder("o5", "placed", 48.0, None, (("SKU-A", 5),)),               # older than the cutoff: not
        SeedOrder("o6", "shipped", 0.2, None, (("SKU-A", 7),)),               # status: not
    )
    # (age in hours, lines)
    carts: tuple[tuple[float, tuple[tuple[str, int], ...]], ...] = (
        (0.2, (("SKU-A", 1), ("SKU-B", 1))),   # active
        (48.0, (("SKU-B", 9),)),               # older than the cart cutoff
    )


SEED = ShopSeed()


class CheckoutRefused(Exception):
    """The platform's checkout refused an order."""


class Harness(Protocol):
    port: ShopPort
    # What the platform counts as demand beyond the orders' own state: the reference shop applies
    # the unsent-order age cutoff and keeps carts; Magento and PrestaShop count every order whose
    # stock is still held (however old) and keep no cart demand.
    order_age_cutoff: bool
    counts_carts: bool
    # contract cases another part of the adapter still has to implement: expected to fail (strict)
    pending: frozenset[str]
    # a PostgreSQL connection string to the shop's own database as the shop's own role, where an
    # `InPlaceShop` adapter offers its reads in place; None: the shop is no PostgreSQL database
    in_place_dsn: str | None

    def seed(self, seed: ShopSeed) -> dict[str, int]:
        """Empty the shop, load `seed`; returns the platform's order id of each seed order key."""
        ...

    def checkout(self, lines: list[tuple[str, int]]) -> int:
        """Place an order through the platform's own checkout; `CheckoutRefused` when refused."""
        ...

    def stock(self) -> dict[str, tuple[int, int]]:
        """sku -> (sellable qty, last WMS seq), read from the platform's tables, not the port."""
        ...

    def now(self) -> datetime:
        """The shop database's clock."""
        ...


# ------------------------------------------------------------------ the reference PostgreSQL shop

class PostgresHarness:
    order_age_cutoff = True
    counts_carts = True
    pending: frozenset[str] = frozenset()

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.in_place_dsn = dsn
        self.port = open_shop(dsn, "postgres")

    def now(self) -> datetime:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]

    def seed(self, seed: ShopSeed) -> dict[str, int]:
        ids: dict[str, int] = {}
        with psycopg.connect(self.dsn) as conn:
            conn.execute("TRUNCATE shop.order_lines, shop.orders, shop.cart_lines, shop.carts, "
                         "shop.checkout_freezes, shop.stock, shop.products RESTART IDENTITY CASCADE")
            cur = conn.cursor()
            cur.executemany("INSERT INTO shop.products (sku, name, enabled) VALUES (%s, %s, %s)",
                            [(sku, sku.lower(), enabled) for sku, enabled in seed.products])
            cur.executemany("INSERT INTO shop.stock (sku, qty, wms_seq) VALUES (%s, %s, %s)", list(seed.stock))
            for order in seed.orders:
                row = conn.execute(
                    "INSERT INTO shop.orders (status, created_at, wms_acknowledged_at) VALUES "
                    "(%s, now() - make_interval(secs => %s), now() - make_interval(secs => %s)) RETURNING order_id",
                    (order.status, order.age_hours * HOUR,
                     None if order.acknowledged_hours_ago is None else order.acknowledged_hours_ago * HOUR)).fetchone()
                assert row is not None
                ids[order.key] = int(row[0])
                cur.executemany("INSERT INTO shop.order_lines (order_id, sku, qty) VALUES (%s, %s, %s)",
                                [(row[0], sku, qty) for sku, qty in order.lines])
            for age, lines in seed.carts:
                cart = conn.execute("INSERT INTO shop.carts (updated_at) VALUES (now() - make_interval(secs => %s)) "
                                    "RETURNING cart_id", (age * HOUR,)).fetchone()
                assert cart is not None
                cur.executemany("INSERT INTO shop.cart_lines (cart_id, sku, qty) VALUES (%s, %s, %s)",
                                [(cart[0], sku, qty) for sku, qty in lines])
        return ids

    def checkout(self, lines: list[tuple[str, int]]) -> int:
        try:
            with psycopg.connect(self.dsn) as conn:
                row = conn.execute("SELECT shop.place_order(%s, %s)",
                                   ([s for s, _ in lines], [q for _, q in lines])).fetchone()
        except psycopg.DatabaseError as exc:
            if not (exc.sqlstate or "").startswith("SF"):  # the checkout's own refusals: SF001..SF003
                raise
            raise CheckoutRefused(str(exc)) from exc
        assert row is not None
        return int(row[0])

    def stock(self) -> dict[str, tuple[int, int]]:
        with psycopg.connect(self.dsn) as conn:
            return {sku: (qty, seq) for sku, qty, seq in conn.execute("SELECT sku, qty, wms_seq FROM shop.stock")}


@contextmanager
def postgres_harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The reference shop in a database of its own on the test cluster (never stocksync's)."""
    pg: LocalPostgres = request.getfixturevalue("pg")
    pg.drop_database(SHOP_DATABASE)
    pg.create_database(SHOP_DATABASE)
    dsn = pg.dsn(SHOP_DATABASE)
    ddl = sql.SQL((REFERENCE_SHOP_ADAPTER / "create_schema.sql").read_text()).format(shop=sql.Identifier("shop"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl)
    yield PostgresHarness(dsn)
    pg.drop_database(SHOP_DATABASE)


# ------------------------------------------------------------ the MySQL/MariaDB platforms

# The order push and the live write-back of the MySQL platforms are built apart (their own change).
MYSQL_PENDING: frozenset[str] = frozenset()


class MySQLHarness:
    """What the Magento and PrestaShop harnesses share: the store's database, its clock, and the
    web server's checkout gate (nginx asks the availability service, which reads stocksync's freeze
    table: a checkout request is refused while a freeze is active, before the platform sees it)."""

    order_age_cutoff = False
    counts_carts = False
    pending = MYSQL_PENDING
    prefix = ""
    in_place_dsn = None

    def __init__(self, server: LocalMariaDB, database: str, port: ShopPort) -> None:
        self.server = server
        self.database = database
        self.port = port

    def transaction(self) -> AbstractContextManager[Any]:
        return store_transaction(self.server, self.database)

    def rows(self, text: str, params: Any = None) -> list[tuple[Any, ...]]:
        return store_rows(self.server, self.database, text.replace("{p}", self.prefix), params)

    def now(self) -> datetime:
        return self.rows("SELECT UTC_TIMESTAMP(6)")[0][0].replace(tzinfo=UTC)

    def gate(self) -> None:
        frozen = self.rows("SELECT COUNT(*) FROM {p}stocksync_checkout_freeze "
                           "WHERE released_at IS NULL AND expires_at > UTC_TIMESTAMP(6)")[0][0]
        if frozen:
            raise CheckoutRefused("the web server's gate: checkout is frozen")

    def empty(self, cur: Any, tables: tuple[str, ...]) -> None:
        for table in tables:
            cur.execute(f"DELETE FROM {self.prefix}{table}")

    def acknowledge(self, cur: Any, key: dict[str, Any], order: SeedOrder, table: str = "stocksync_order_ack") -> None:
        """The WMS's acknowledgement of `order`, under its `key` (column -> value) in the side table."""
        if order.acknowledged_hours_ago is not None:
            cur.execute(f"INSERT INTO {self.prefix}{table} ({', '.join(key)}, acknowledged_at) "
                        f"VALUES ({', '.join(['%s'] * len(key))}, UTC_TIMESTAMP(6) - INTERVAL %s SECOND)",
                        (*key.values(), order.acknowledged_hours_ago * HOUR))


# Magento: the seed's statuses as order states and Magento's default status of each, and whether the
# order still holds its reservation (a cancel or a shipment appended the compensating row).
MAGENTO_STATES = {"placed": ("new", "pending", True), "paid": ("processing", "processing", True),
                  "cancelled": ("canceled", "canceled", False), "shipped": ("complete", "complete", False)}


class Magento2Harness(MySQLHarness):
    """A single-source Magento 2 MSI store (the default source and stock). A seed product that is
    not on sale is a configurable parent (its salability comes from children, not its own stock);
    the seed's sellable qty becomes the source quantity plus the units its open orders reserve, so
    Magento's salable figure (legacy stock status qty + reservations) equals the seed's."""

    prefix = "mgc_"

    def seed(self, seed: ShopSeed) -> dict[str, int]:
        p = self.prefix
        open_units: dict[str, int] = {}
        ids: dict[str, int] = {}
        with self.transaction() as conn:
            with conn.cursor() as cur:
                self.empty(cur, ("inventory_reservation", "sales_order_item", "sales_order", "inventory_source_item",
                                 "cataloginventory_stock_status", "cataloginventory_stock_item",
                                 "catalog_product_entity", "inventory_source_stock_link", "inventory_source",
                                 "inventory_stock", "stocksync_sku_state", "stocksync_order_ack_by_store",
                                 "stocksync_checkout_freeze"))
                cur.execute(f"INSERT INTO {p}inventory_source (source_code, name, enabled) "
                            "VALUES ('default', 'Default', 1)")
                cur.execute(f"INSERT INTO {p}inventory_stock (stock_id, name) VALUES (1, 'Default Stock')")
                cur.execute(f"INSERT INTO {p}inventory_source_stock_link (stock_id, source_code, priority) "
                            "VALUES (1, 'default', 1)")
                for sku, enabled in seed.products:
                    cur.execute(f"INSERT INTO {p}catalog_product_entity (sku, type_id) VALUES (%s, %s)",
                                (sku, "simple" if enabled else "configurable"))
                    cur.execute(f"INSERT INTO {p}cataloginventory_stock_item (product_id, stock_id, website_id, qty, "
                                "is_in_stock) VALUES (%s, 1, 0, 0, 0)", (cur.lastrowid,))
                for n, order in enumerate(seed.orders, start=1):
                    increment_id = f"00000{n:04d}"
                    state, status, holds = MAGENTO_STATES[order.status]
                    cur.execute(f"INSERT INTO {p}sales_order (state, status, increment_id, store_id, created_at) "
                                "VALUES (%s, %s, %s, 1, UTC_TIMESTAMP() - INTERVAL %s SECOND)",
                                (state, status, increment_id, order.age_hours * HOUR))
                    ids[order.key] = int(cur.lastrowid)
                    for sku, qty in order.lines:
                        cur.execute(f"INSERT INTO {p}sales_order_item (order_id, sku, product_type, qty_ordered) "
                                    "VALUES (%s, %s, 'simple', %s)", (ids[order.key], sku, qty))
                        self.reserve(cur, sku, -qty, "order_placed", increment_id)
                        if holds:
                            open_units[sku] = open_units.get(sku, 0) + qty
                        else:
                            self.reserve(cur, sku, qty, "order_canceled", increment_id)
                    self.acknowledge(cur, {"store_id": 1, "increment_id": increment_id}, order,
                                     "stocksync_order_ack_by_store")
                for sku, qty, seq in seed.stock:
                    self.source_item(cur, sku, qty + open_units.get(sku, 0))
                    cur.execute(f"INSERT INTO {p}stocksync_sku_state (source_code, sku, wms_seq) "
                                "VALUES ('default', %s, %s)", (sku, seq))
        return ids

    def reserve(self, cur: Any, sku: str, qty: int, event: str, increment_id: str) -> None:
        metadata = json.dumps({"event_type": event, "object_type": "order", "object_id": "",
                               "object_increment_id": increment_id})
        cur.execute(f"INSERT INTO {self.prefix}inventory_reservation (stock_id, sku, quantity, metadata) "
                    "VALUES (1, %s, %s, %s)", (sku, qty, metadata))

    def source_item(self, cur: Any, sku: str, quantity: int) -> None:
        """A default-source item as Magento saves it: the source item, the legacy stock item and
        the legacy stock status (the default stock's index) together."""
        p = self.prefix
        status = int(quantity > 0)
        cur.execute(f"INSERT INTO {p}inventory_source_item (source_code, sku, quantity, status) "
                    "VALUES ('default', %s, %s, %s)", (sku, quantity, status))
        cur.execute(f"UPDATE {p}cataloginventory_stock_item i JOIN {p}catalog_product_entity e "
                    "ON e.entity_id = i.product_id SET i.qty = %s, i.is_in_stock = %s WHERE e.sku = %s",
                    (quantity, status, sku))
        cur.execute(f"INSERT INTO {p}cataloginventory_stock_status (product_id, website_id, stock_id, qty, "
                    f"stock_status) SELECT entity_id, 0, 1, %s, %s FROM {p}catalog_product_entity WHERE sku = %s",
                    (quantity, status, sku))

    def salable(self) -> dict[str, int]:
        """Magento's salable quantity of the default stock (GetProductSalableQty: the legacy stock
        status qty plus the stock's reservations, 0 when the status says out of stock; min qty 0)."""
        rows = self.rows("SELECT e.sku, IF(ss.stock_status = 1, ss.qty + COALESCE((SELECT SUM(r.quantity) "
                         "FROM {p}inventory_reservation r WHERE r.stock_id = 1 AND r.sku = e.sku), 0), 0) "
                         "FROM {p}cataloginventory_stock_status ss JOIN {p}catalog_product_entity e "
                         "ON e.entity_id = ss.product_id WHERE ss.stock_id = 1")
        return {sku: int(qty) for sku, qty in rows}

    def checkout(self, lines: list[tuple[str, int]]) -> int:
        """Magento's checkout behind the gate: the salable check, then the reservations (no lock)."""
        self.gate()
        salable = self.salable()
        if any(salable.get(sku, 0) < qty for sku, qty in lines):
            raise CheckoutRefused("Not all of your products are available in the requested quantity")
        increment_id = f"1{time.time_ns() % 10**9:09d}"
        with self.transaction() as conn, conn.cursor() as cur:
            for sku, qty in lines:
                self.reserve(cur, sku, -qty, "order_placed", increment_id)
            cur.execute(f"INSERT INTO {self.prefix}sales_order (state, status, increment_id, store_id) "
                        "VALUES ('new', 'pending', %s, 1)", (increment_id,))
            return int(cur.lastrowid)

    def stock(self) -> dict[str, tuple[int, int]]:
        seqs = dict(self.rows("SELECT sku, wms_seq FROM {p}stocksync_sku_state WHERE source_code = 'default'"))
        items = [sku for (sku,) in self.rows("SELECT sku FROM {p}inventory_source_item WHERE source_code = 'default'")]
        salable = self.salable()
        return {sku: (max(0, salable.get(sku, 0)), int(seqs.get(sku, 0))) for sku in items}


# PrestaShop's default order states (install data): the seed's statuses, and which are shipped
PRESTASHOP_STATES = {"placed": 1, "paid": 2, "shipped": 4, "cancelled": 6}
PRESTASHOP_SHIPPED = {1: 0, 2: 0, 4: 1, 5: 1, 6: 0, 8: 0}


class PrestaShopHarness(MySQLHarness):
    """A one-shop PrestaShop 8 store: a seed SKU is the reference of a product without
    combinations (its `stock_available` row id_product_attribute 0); not on sale: `active = 0`."""

    prefix = "psc_"

    def seed(self, seed: ShopSeed) -> dict[str, int]:
        p = self.prefix
        ids: dict[str, int] = {}
        products: dict[str, int] = {}
        with self.transaction() as conn:
            with conn.cursor() as cur:
                self.empty(cur, ("order_detail", "orders", "order_state", "stock_available", "product_attribute",
                                 "product", "shop", "shop_group", "stocksync_sku_state", "stocksync_order_ack",
                                 "stocksync_checkout_freeze"))
                cur.execute(f"INSERT INTO {p}shop_group (id_shop_group, name, share_stock) VALUES (1, 'Default', 0)")
                cur.execute(f"INSERT INTO {p}shop (id_shop, id_shop_group, name) VALUES (1, 1, 'Shop')")
                cur.executemany(f"INSERT INTO {p}order_state (id_order_state, shipped) VALUES (%s, %s)",
                                list(PRESTASHOP_SHIPPED.items()))
                for sku, enabled in seed.products:
                    cur.execute(f"INSERT INTO {p}product (reference, active) VALUES (%s, %s)", (sku, int(enabled)))
                    products[sku] = int(cur.lastrowid)
                for sku, qty, seq in seed.stock:
                    cur.execute(f"INSERT INTO {p}stock_available (id_product, id_product_attribute, id_shop, "
                                "id_shop_group, quantity, physical_quantity) VALUES (%s, 0, 1, 0, %s, %s)",
                                (products[sku], qty, qty))
                    cur.execute(f"INSERT INTO {p}stocksync_sku_state (scope, sku, wms_seq) VALUES ('shop:1', %s, %s)",
                                (sku, seq))
                for order in seed.orders:
                    ids[order.key] = self.order(cur, PRESTASHOP_STATES[order.status], order.age_hours,
                                                [(products[sku], qty) for sku, qty in order.lines])
                    self.acknowledge(cur, {"id_order": str(ids[order.key])}, order)
        self.products = products
        return ids

    def order(self, cur: Any, state: int, age_hours: float, lines: list[tuple[int, int]]) -> int:
        p = self.prefix
        cur.execute(f"INSERT INTO {p}orders (id_shop, id_shop_group, current_state, date_add) "
                    "VALUES (1, 1, %s, UTC_TIMESTAMP() - INTERVAL %s SECOND)", (state, age_hours * HOUR))
        id_order = int(cur.lastrowid)
        cur.executemany(f"INSERT INTO {p}order_detail (id_order, product_id, product_attribute_id, product_quantity) "
                        "VALUES (%s, %s, 0, %s)", [(id_order, id_product, qty) for id_product, qty in lines])
        return id_order

    def checkout(self, lines: list[tuple[str, int]]) -> int:
        """PrestaShop's order validation behind the gate: check the quantity, create the order and
        decrement `stock_available.quantity` in one transaction (the update waits on a row lock)."""
        self.gate()
        p = self.prefix
        with self.transaction() as conn, conn.cursor() as cur:
            for sku, qty in lines:
                cur.execute(f"SELECT quantity FROM {p}stock_available WHERE id_product = %s "
                            "AND id_product_attribute = 0 AND id_shop = 1", (self.products[sku],))
                found = cur.fetchone()
                if found is None or found[0] < qty:
                    raise CheckoutRefused(f"{sku}: there are not enough products in stock")
            order_id = self.order(cur, 2, 0.0, [(self.products[sku], qty) for sku, qty in lines])
            for sku, qty in lines:
                cur.execute(f"UPDATE {p}stock_available SET quantity = quantity - %s WHERE id_product = %s "
                            "AND id_product_attribute = 0 AND id_shop = 1", (qty, self.products[sku]))
            return order_id

    def stock(self) -> dict[str, tuple[int, int]]:
        return {sku: (int(qty), int(seq)) for sku, qty, seq in self.rows(
            "SELECT pr.reference, sa.quantity, COALESCE(st.wms_seq, 0) FROM {p}stock_available sa "
            "JOIN {p}product pr ON pr.id_product = sa.id_product "
            "LEFT JOIN {p}stocksync_sku_state st ON st.scope = 'shop:1' AND st.sku = pr.reference "
            "WHERE sa.id_shop = 1 AND sa.id_product_attribute = 0")}


@contextmanager
def mysql_harness(request: pytest.FixtureRequest, platform: str, make: type[MySQLHarness],
                  **options: Any) -> Iterator[Harness]:
    """The platform's store in a MariaDB database of its own (tables created from the platform's
    schema file, then stocksync's side tables by the adapter's own migrations)."""
    server: LocalMariaDB = request.getfixturevalue("mariadb")
    database = f"contract_{platform}"
    server.drop_database(database)
    server.create_database(database)
    port = open_shop(mariadb_dsn(server, database), platform, table_prefix=make.prefix, **options)
    port.create_platform_schema()  # type: ignore[attr-defined]
    port.migrate()  # type: ignore[attr-defined]
    yield make(server, database, port)
    server.drop_database(database)


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], AbstractContextManager[Harness]]] = {
    "postgres": postgres_harness,
    "magento2": lambda request: mysql_harness(request, "magento2", Magento2Harness),
    "prestashop": lambda request: mysql_harness(request, "prestashop", PrestaShopHarness),
}


@pytest.fixture(scope="module", params=sorted(set(PLATFORMS) | set(HARNESSES)))
def platform_harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    make = HARNESSES.get(request.param)
    if make is None:
        pytest.fail(f"shop platform {request.param!r} has no harness in HARNESSES: add one")
    with make(request) as harness:
        yield harness


@pytest.fixture
def harness(platform_harness: Harness, request: pytest.FixtureRequest) -> Harness:
    """The platform's shop, freshly seeded (order ids in `harness.orders`)."""
    if request.node.originalname in platform_harness.pending:
        request.applymarker(pytest.mark.xfail(raises=ShopContractError, strict=True,
                                              reason=f"{platform_harness.port.platform}: not implemented yet"))
    platform_harness.orders = platform_harness.seed(SEED)  # type: ignore[attr-defined]
    return platform_harness


@pytest.fixture
def staging(shop_dsn: str) -> Iterator[psycopg.Connection]:
    """A connection to stocksync's own database (the test database), where the sink tables live."""
    with psycopg.connect(shop_dsn) as conn:
        yield conn
        conn.rollback()


def copy_into(conn: psycopg.Connection, columns: str, fill: Callable[[Any], int]) -> tuple[int, list[tuple[Any, ...]]]:
    """A temp table in stocksync's database with `columns`, filled by `fill(copy)`; its rows, sorted."""
    conn.execute("DROP TABLE IF EXISTS port_sink")
    conn.execute(f"CREATE TEMP TABLE port_sink ({columns})")
    names = ", ".join(c.split()[0] for c in columns.split(","))
    with conn.cursor() as cur, cur.copy(f"COPY port_sink ({names}) FROM STDIN") as copy:
        count = fill(copy)
    return count, sorted(conn.execute("SELECT * FROM port_sink").fetchall())


def demand(harness: Harness, *, watermark_hours_ago: float = 2.0, include_orders: bool = True,
           include_carts: bool = True) -> DemandQuery:
    return DemandQuery(include_orders=include_orders, unsent_cutoff_seconds=24 * HOUR, unsent_statuses=UNSENT,
                       watermark=harness.now() - timedelta(hours=watermark_hours_ago), watermark_source="wms",
                       include_carts=include_carts, cart_cutoff_seconds=24 * HOUR)


def nonzero(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [r for r in rows if any(r[1:])]


def expected_demand(harness: Harness, reference: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The reference shop's expected demand rows, for a platform without the age cutoff (o5, 5 units
    of SKU-A placed 48 h ago and never acknowledged, still holds its stock there: it counts) or
    without cart demand (the cart column is 0)."""
    old_order = 0 if harness.order_age_cutoff else 5
    return [(sku, unsent + (old_order if sku == "SKU-A" else 0), carts if harness.counts_carts else 0)
            for sku, unsent, carts in reference]


# ------------------------------------------------------------------------------ the contract

class ShopPortContract:
    """What every shop adapter must do. Subclass it, or run it through the `harness` fixture."""

    def test_is_a_shop_port(self, harness: Harness) -> None:
        assert isinstance(harness.port, ShopPort)
        assert PLATFORMS[harness.port.platform]

    # -- bulk reads into stocksync's staging --------------------------------------------------------
    def test_catalog_streams_into_staging(self, harness: Harness, staging: psycopg.Connection) -> None:
        count, rows = copy_into(staging, "sku text, enabled boolean", harness.port.stream_catalog)
        assert rows == [("SKU-A", True), ("SKU-B", True), ("SKU-C", False), ("SKU-D", True)]
        assert count == 4

    def test_stock_streams_into_staging(self, harness: Harness, staging: psycopg.Connection) -> None:
        count, rows = copy_into(staging, "sku text, qty integer, wms_seq bigint", harness.port.stream_stock)
        assert rows == [("SKU-A", 10, 5), ("SKU-B", 4, 2), ("SKU-C", 0, 1)]
        assert count == 3

    # -- optional: the catalog and stock read in place (the shop in stocksync's own database) ---------
    def test_reads_in_place_only_on_the_shops_own_database(self, harness: Harness,
                                                           staging: psycopg.Connection) -> None:
        """On the shop's own database, as the shop's role, an `InPlaceShop` adapter's statements
        return the seed's catalog and stock, exactly the rows the streams give; on stocksync's
        database (another one here) it offers nothing, whatever it would offer elsewhere."""
        assert in_place_reads(harness.port, staging) is None
        if harness.in_place_dsn is None:  # never stocksync's PostgreSQL database: nothing to read in place
            assert not isinstance(harness.port, InPlaceShop)
            return
        assert isinstance(harness.port, InPlaceShop)
        with psycopg.connect(harness.in_place_dsn) as conn:
            reads = in_place_reads(harness.port, conn)
            assert reads is not None
            catalog = conn.execute(sql.SQL("SELECT sku, enabled FROM ({}) c ORDER BY sku").format(reads.catalog))
            assert catalog.fetchall() == [("SKU-A", True), ("SKU-B", True), ("SKU-C", False), ("SKU-D", True)]
            stock = conn.execute(sql.SQL("SELECT sku, qty, wms_seq FROM ({}) s ORDER BY sku").format(
                reads.current_stock))
            assert stock.fetchall() == [("SKU-A", 10, 5), ("SKU-B", 4, 2), ("SKU-C", 0, 1)]

    def test_applies_in_place_as_the_session_does(self, harness: Harness, staging: psycopg.Connection) -> None:
        """On the shop's own database an `InPlaceShop` applies inside stocksync's transaction: the
        demand under the lock and the sequence-guarded write from a table where it stands give what
        `apply_session` gives (the same expectations as the tests above), committed with it; on
        another database the adapter refuses, and a rolled-back transaction writes nothing."""
        if harness.in_place_dsn is None:
            return
        assert isinstance(harness.port, InPlaceShop)
        with pytest.raises(ShopContractError, match="not to this shop"):
            with harness.port.apply_in_place(staging, lock_timeout_seconds=5):
                pass
        with psycopg.connect(harness.in_place_dsn) as conn:
            conn.execute("CREATE TEMP TABLE plan_writes (sku text, new_qty integer, wms_seq bigint)")
            conn.execute("INSERT INTO plan_writes VALUES ('SKU-A', 7, 6), ('SKU-B', 9, 1), ('SKU-C', 0, 1), "
                         "('SKU-D', 3, 4)")
            conn.execute("CREATE TEMP TABLE locked_demand (sku text, unsent_qty bigint, cart_qty bigint)")
            with harness.port.apply_in_place(conn, lock_timeout_seconds=5) as shop:
                assert isinstance(shop, InPlaceApply) and shop.rows_locked_at is not None
                shop.demand_into(sql.Identifier("locked_demand"), demand(harness))
                changed = shop.write_stock_from(sql.Identifier("plan_writes"))
            rows = conn.execute("SELECT sku, unsent_qty, cart_qty FROM locked_demand ORDER BY sku").fetchall()
            assert harness.stock()["SKU-A"] == (10, 5)  # not committed yet: others see the old figures
            conn.commit()
        assert sorted(changed) == ["SKU-A", "SKU-D"]
        assert harness.stock() == {"SKU-A": (7, 6), "SKU-B": (4, 2), "SKU-C": (0, 1), "SKU-D": (3, 4)}
        assert nonzero(rows) == expected_demand(harness, [("SKU-A", 5, 1), ("SKU-B", 1, 1)])

    def test_demand_counts_only_uncounted_orders_and_active_carts(self, harness: Harness,
                                                                  staging: psycopg.Connection) -> None:
        q = demand(harness)
        _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                            lambda sink: harness.port.stream_demand(q, sink))
        # A: o1 2 + o2 3 (acked after the mark); cart 1. B: o1 1 (o3 acked before, o4 cancelled); cart 1
        assert nonzero(rows) == expected_demand(harness, [("SKU-A", 5, 1), ("SKU-B", 1, 1)])

    def test_demand_follows_the_watermark_and_the_modes(self, harness: Harness, staging: psycopg.Connection) -> None:
        later = demand(harness, watermark_hours_ago=0.0, include_carts=False)  # o2 now counted by the WMS
        _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                            lambda sink: harness.port.stream_demand(later, sink))
        assert nonzero(rows) == expected_demand(harness, [("SKU-A", 2, 0), ("SKU-B", 1, 0)])
        none = demand(harness, include_orders=False, include_carts=False)
        _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                            lambda sink: harness.port.stream_demand(none, sink))
        assert nonzero(rows) == []

    # -- the checkout freeze ------------------------------------------------------------------------
    def test_freeze_closes_checkout_until_its_holder_releases_it(self, harness: Harness) -> None:
        port = harness.port
        held = port.set_freeze(set_by="run-1", reason="nightly sync", message="back at {end}",
                               placeholder="{end}", ttl_seconds=600)
        # the expiry is the TTL after the freeze was set (two clock readings of one statement)
        assert abs(held.expires_at - held.set_at - timedelta(seconds=600)) < timedelta(seconds=1)
        end = held.expires_at.astimezone(UTC)
        rounded = (end + timedelta(seconds=59.999999)).replace(second=0, microsecond=0)
        assert held.shopper_message == f"back at {rounded:%H:%M} UTC"
        port.set_freeze(set_by="ops", reason="maintenance", message="closed", placeholder="{end}", ttl_seconds=600)
        with pytest.raises(CheckoutRefused):
            harness.checkout([("SKU-A", 1)])
        assert {f.set_by for f in port.active_freezes()} == {"run-1", "ops"}
        mine = port.active_freezes(set_by="run-1")
        assert [(f.freeze_id, f.reason, f.shopper_message) for f in mine] == [
            (held.freeze_id, "nightly sync", held.shopper_message)]
        assert all(isinstance(f, ActiveFreeze) for f in mine)

        assert port.release_freezes(set_by="run-1") == 1
        assert port.release_freezes(set_by="run-1") == 0
        assert [f.set_by for f in port.active_freezes()] == ["ops"]  # another holder's freeze survives
        assert 0 < port.freeze_seconds(set_by="run-1") < 600
        assert port.freeze_seconds(set_by="nobody") == 0
        port.release_freezes(set_by="ops")
        assert harness.checkout([("SKU-A", 1)]) > 0

    # -- the apply ----------------------------------------------------------------------------------
    def test_apply_writes_guarded_by_the_wms_sequence(self, harness: Harness) -> None:
        with harness.port.apply_session(lock_timeout_seconds=5) as shop:
            changed = shop.write_stock([
                StockWrite("SKU-A", 7, 6),   # newer sequence: written
                StockWrite("SKU-B", 9, 1),   # older than the stored 2: stale, not written
                StockWrite("SKU-C", 0, 1),   # same figure, same sequence: nothing moves
                StockWrite("SKU-D", 3, 4),   # catalog SKU without a stock row: gets one
            ])
        assert sorted(changed) == ["SKU-A", "SKU-D"]
        assert harness.stock() == {"SKU-A": (7, 6), "SKU-B": (4, 2), "SKU-C": (0, 1), "SKU-D": (3, 4)}

    def test_apply_reads_demand_and_stock_under_the_lock(self, harness: Harness, staging: psycopg.Connection) -> None:
        q = demand(harness)
        with harness.port.apply_session(lock_timeout_seconds=5) as shop:
            assert sorted(shop.read_stock(["SKU-A", "SKU-D"]), key=lambda r: r.sku) == [StockRow("SKU-A", 10, 5)]
            _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                                lambda sink: shop.stream_demand(q, sink))
        assert nonzero(rows) == expected_demand(harness, [("SKU-A", 5, 1), ("SKU-B", 1, 1)])

    def test_the_session_says_when_it_locked_stock_rows(self, harness: Harness) -> None:
        """What checkout can wait on is measured from the session's first lock on stock rows: the
        MySQL adapters lock only at the write (none before it), the reference shop at the start."""
        opened = time.perf_counter()
        with harness.port.apply_session(lock_timeout_seconds=5) as shop:
            before_write = shop.rows_locked_at
            writing = time.perf_counter()
            shop.write_stock([StockWrite("SKU-A", 7, 6)])
            after_write = shop.rows_locked_at
        assert after_write is not None and opened <= after_write <= time.perf_counter()
        if isinstance(harness.port, MySQLShop):
            assert before_write is None and after_write >= writing
        else:
            assert before_write == after_write and after_write <= writing

    def test_a_failed_apply_writes_nothing(self, harness: Harness) -> None:
        with pytest.raises(RuntimeError, match="guardrail"):
            with harness.port.apply_session(lock_timeout_seconds=5) as shop:
                shop.write_stock([StockWrite("SKU-A", 1, 9)])
                raise RuntimeError("a guardrail stopped the run")
        assert harness.stock()["SKU-A"] == (10, 5)

    def test_a_checkout_waiting_on_the_apply_takes_from_the_written_figure(self, harness: Harness) -> None:
        """Rule 3: the checkout that waited on the lock decrements the new value. The order is sent
        once the lock is held; whether it ran before the write or waited, the shop ends at 7 - 2 only
        if it waited (before the write it would have left 8, overwritten to 7)."""
        placed: list[int] = []
        with harness.port.apply_session(lock_timeout_seconds=5) as shop:
            thread = threading.Thread(target=lambda: placed.append(harness.checkout([("SKU-A", 2)])))
            thread.start()
            thread.join(0.5)  # lets a checkout that is not held back finish before the write
            shop.write_stock([StockWrite("SKU-A", 7, 6)])
        thread.join(30)
        assert placed, "the checkout did not complete after the apply committed"
        assert harness.stock()["SKU-A"] == (5, 6)

    def test_the_lock_wait_is_bounded(self, harness: Harness) -> None:
        with harness.port.apply_session(lock_timeout_seconds=5):
            with pytest.raises(ShopUnavailable, match="lock"):
                with harness.port.apply_session(lock_timeout_seconds=0.2):
                    pass

    # -- the order push -----------------------------------------------------------------------------
    def test_order_push_reads_and_acknowledges(self, harness: Harness) -> None:
        ids: dict[str, int] = harness.orders  # type: ignore[attr-defined]
        port = harness.port
        assert sorted(o.order_id for o in port.unacknowledged_orders(UNSENT)) == sorted([ids["o1"], ids["o5"]])
        assert [o.order_id for o in port.cancelled_orders(("cancelled",))] == [ids["o4"]]
        received = harness.now().replace(microsecond=0)
        with port.order_push_session(lock_timeout_seconds=5) as batch:
            lines = batch.order_lines([ids["o2"], ids["o1"]])
            acked = batch.acknowledge([ids["o1"], ids["o2"]], [received, received])
        first, second = sorted([ids["o1"], ids["o2"]])
        expected = {ids["o1"]: [("SKU-A", 2), ("SKU-B", 1)], ids["o2"]: [("SKU-A", 3)]}
        assert lines == [OrderLine(o, s, q) for o in (first, second) for s, q in expected[o]]
        assert acked == [ids["o1"]]  # o2 keeps its first acknowledgement
        assert [o.order_id for o in port.unacknowledged_orders(UNSENT)] == [ids["o5"]]

    def test_a_failed_batch_acknowledges_nothing(self, harness: Harness) -> None:
        ids: dict[str, int] = harness.orders  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError):
            with harness.port.order_push_session(lock_timeout_seconds=5) as batch:
                batch.acknowledge([ids["o1"]], [harness.now()])
                raise RuntimeError("the WMS answered 500")
        assert ids["o1"] in {o.order_id for o in harness.port.unacknowledged_orders(UNSENT)}

    def test_the_order_push_lock_holds_an_apply_back(self, harness: Harness) -> None:
        with harness.port.order_push_session(lock_timeout_seconds=5):
            with pytest.raises(ShopUnavailable):
                with harness.port.apply_session(lock_timeout_seconds=0.2):
                    pass

    # -- live lookups -------------------------------------------------------------------------------
    def test_sellable_is_what_checkout_sees(self, harness: Harness) -> None:
        port = harness.port
        assert port.sellable("SKU-A") == Sellable("SKU-A", True, 10, 5)
        assert port.sellable("SKU-C") == Sellable("SKU-C", False, 0, 1)
        assert port.sellable("SKU-D") == Sellable("SKU-D", True, None, None)
        assert port.sellable("NOT-IN-CATALOG") is None

    def test_live_write_back_is_strictly_newer_only(self, harness: Harness) -> None:
        q = demand(harness)
        with harness.port.live_session("SKU-A", lock_timeout_seconds=5) as live:
            assert live.current == StockRow("SKU-A", 10, 5)
            assert live.demand(q) == DemandRow(*expected_demand(harness, [("SKU-A", 5, 1)])[0])
            assert live.write(4, 5) is None  # the same sequence is already applied
            assert live.write(4, 6) == StockRow("SKU-A", 4, 6)
        with harness.port.live_session("SKU-D", lock_timeout_seconds=5) as live:
            assert live.current is None
            assert live.demand(q) == DemandRow("SKU-D", 0, 0)
        assert harness.stock()["SKU-A"] == (4, 6)


class TestShopPortContract(ShopPortContract):
    """The contract, once per registered platform (the `harness` fixture's parameters)."""


def test_an_unknown_platform_says_what_to_configure() -> None:
    with pytest.raises(UnknownShopPlatform, match="shop_platform 'oracle'.*postgres"):
        open_shop("dbname=x", "oracle")
