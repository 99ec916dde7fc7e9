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

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
import pytest
from psycopg import sql

from devstack.local_pg import LocalPostgres
from include.stocksync.shop.port import (
    ActiveFreeze,
    DemandQuery,
    DemandRow,
    OrderLine,
    Sellable,
    ShopPort,
    ShopUnavailable,
    StockRow,
    StockWrite,
)
from include.stocksync.shop.registry import PLATFORMS, UnknownShopPlatform, open_shop
from include.stocksync.store.db import REFERENCE_SHOP_ADAPTER

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
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
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
def postgres_harness(pg: LocalPostgres) -> Iterator[Harness]:
    """The reference shop in a database of its own on the test cluster (never stocksync's)."""
    pg.drop_database(SHOP_DATABASE)
    pg.create_database(SHOP_DATABASE)
    dsn = pg.dsn(SHOP_DATABASE)
    ddl = sql.SQL((REFERENCE_SHOP_ADAPTER / "create_schema.sql").read_text()).format(shop=sql.Identifier("shop"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl)
    yield PostgresHarness(dsn)
    pg.drop_database(SHOP_DATABASE)


HARNESSES: dict[str, Callable[[LocalPostgres], AbstractContextManager[Harness]]] = {
    "postgres": postgres_harness,
}


@pytest.fixture(scope="module", params=sorted(PLATFORMS))
def platform_harness(request: pytest.FixtureRequest, pg: LocalPostgres) -> Iterator[Harness]:
    make = HARNESSES.get(request.param)
    if make is None:
        pytest.fail(f"shop platform {request.param!r} has no harness in HARNESSES: add one")
    with make(pg) as harness:
        yield harness


@pytest.fixture
def harness(platform_harness: Harness) -> Harness:
    """The platform's shop, freshly seeded (order ids in `harness.orders`)."""
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

    def test_demand_counts_only_uncounted_orders_and_active_carts(self, harness: Harness,
                                                                  staging: psycopg.Connection) -> None:
        q = demand(harness)
        _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                            lambda sink: harness.port.stream_demand(q, sink))
        # A: o1 2 + o2 3 (acked after the mark); cart 1. B: o1 1 (o3 acked before, o4 cancelled); cart 1
        assert nonzero(rows) == [("SKU-A", 5, 1), ("SKU-B", 1, 1)]

    def test_demand_follows_the_watermark_and_the_modes(self, harness: Harness, staging: psycopg.Connection) -> None:
        later = demand(harness, watermark_hours_ago=0.0, include_carts=False)  # o2 now counted by the WMS
        _, rows = copy_into(staging, "sku text, unsent_qty bigint, cart_qty bigint",
                            lambda sink: harness.port.stream_demand(later, sink))
        assert nonzero(rows) == [("SKU-A", 2, 0), ("SKU-B", 1, 0)]
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
        assert nonzero(rows) == [("SKU-A", 5, 1), ("SKU-B", 1, 1)]

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
            assert live.demand(q) == DemandRow("SKU-A", 5, 1)
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
