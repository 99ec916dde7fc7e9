"""The nightly sync end to end on Magento 2 (MSI) and PrestaShop stores in MariaDB.

stocksync's own PostgreSQL database holds its schema only; the shop is a MariaDB database reached
through an Airflow MySQL connection (`shop_conn_id`) and `shop_platform` with its `platform_options`
(table prefix), as a deployment sets them. The WMS simulator serves the snapshot. Orders in the
platforms' states are placed before the run (new, counted by the WMS, partly shipped, cancelled,
refunded...) and while it runs (through the web server's gate: not while checkout is frozen). After
the run the storefront's figure of every SKU equals the independent expected-stock function of each
platform's semantics test (tests/integration/test_magento2_stock.py, test_prestashop_stock.py),
computed from the test's own order book and the WMS's figures; a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.local_mariadb import LocalMariaDB
from devstack.local_pg import LocalPostgres
from devstack.local_stack import postgres_connection_json
from include.stocksync.shop.magento2.adapter import Magento2Shop, create_platform_schema
from include.stocksync.shop.prestashop.adapter import PrestaShopShop
from include.stocksync.store.migrations import upgrade
from include.stocksync.sync.pipeline import get_run
from tests.conftest import fresh_dag
from tests.integration import test_magento2_stock as mg
from tests.integration import test_prestashop_stock as ps
from tests.integration.mariadb_shops import mariadb_server, store_rows, sync  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

SKUS = 30
STOCKSYNC_DATABASE = "stocksync_platforms"


@pytest.fixture(scope="module")
def stocksync_alone(pg: LocalPostgres) -> Iterator[str]:
    """stocksync's own database: its migrations, no shop."""
    pg.drop_database(STOCKSYNC_DATABASE)
    pg.create_database(STOCKSYNC_DATABASE)
    dsn = pg.dsn(STOCKSYNC_DATABASE)
    upgrade(dsn)
    yield dsn
    pg.drop_database(STOCKSYNC_DATABASE)


def deploy(mariadb: LocalMariaDB, database: str, stocksync_dsn: str, platform: str, prefix: str,
           freeze_mode: str) -> Iterator[None]:
    """Airflow's connections and stocksync's settings pointed at the store, restored after."""
    shop = json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": mariadb.port, "login": "stocksync",
                       "password": mariadb.password, "schema": database})
    env = {"AIRFLOW_CONN_STOCKSYNC_SHOP": shop, "AIRFLOW_CONN_STOCKSYNC_DB": postgres_connection_json(stocksync_dsn),
           "STOCKSYNC_STOCKSYNC_CONN_ID": "stocksync_db", "STOCKSYNC_SHOP_PLATFORM": platform,
           f"STOCKSYNC_PLATFORM_OPTIONS__{platform.upper()}": json.dumps({"table_prefix": prefix}),
           "STOCKSYNC_FREEZE_MODE": freeze_mode}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def stock_the_store(wms: Any, seed: int, product: Callable[[str], Any],
                    shop: Any) -> tuple[list[str], dict[str, int]]:
    """The WMS's catalog as the store's products; the WMS's figures tonight (its allocation covers
    the orders it counted), and the store as it was yesterday: in line with them but for a third
    of the SKUs. Returns the SKUs and the WMS's available figure of each."""
    wms.admin.reset(SKUS, seed)
    skus = [item["sku"] for item in wms.admin.items()]
    for sku in skus:
        product(sku)
    items = wms.admin.set_items([{"sku": sku, "on_hand": 40 + i} for i, sku in enumerate(skus)])["items"]
    available = {item["sku"]: item["available"] for item in items}
    sync(shop, {sku: (qty + (5 if i % 3 == 0 else 0), 0) for i, (sku, qty) in enumerate(available.items())})
    return skus, available


def while_running(dagbag: Any, shop: Any, place: Callable[[int], bool], orders: int) -> Any:
    """Run the nightly while a shopper keeps checking out (`place(n)`), refused by the web
    server's gate while the run's freeze is active (freeze_mode full)."""
    done = threading.Event()
    errors: list[BaseException] = []
    placed: list[int] = []

    def shopper() -> None:
        n = 0
        try:
            while not done.is_set() and n < orders:
                if not shop.active_freezes() and place(n):
                    placed.append(n)
                    n += 1
                done.wait(0.05)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=shopper)
    thread.start()
    try:
        dag_run = fresh_dag(dagbag, "inventory_nightly_sync").test()
    finally:
        done.set()
        thread.join(30)
    assert errors == []
    assert placed, "no order was placed while the run ran"
    return dag_run


def assert_applied(stocksync_dsn: str, dag_run: Any, freeze_mode: str) -> dict[str, Any]:
    from airflow.utils.state import DagRunState

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)
    assert run["status"] in {"applied", "no_changes"}, run["status"]
    assert run["extracted"] == SKUS
    if freeze_mode == "full":
        assert run["freeze_seconds"] > 0  # checkout was closed by the run's freeze, then reopened
    return run


# ------------------------------------------------------------------------------- Magento 2

def magento_store(mariadb: LocalMariaDB, database: str) -> tuple[Magento2Shop, mg.Store]:
    """A fresh single-source Magento store (the default source and stock) and its adapter."""
    mariadb.drop_database(database)
    mariadb.create_database(database)
    shop = Magento2Shop(f"mysql://stocksync:{mariadb.password}@127.0.0.1:{mariadb.port}/{database}",
                        table_prefix=mg.PREFIX)
    create_platform_schema(shop)
    shop.migrate()
    s = mg.Store(mariadb, database)
    s.source("default")
    s.stock(1, ["default"])
    return shop, s


@pytest.mark.parametrize("freeze_mode", ["apply", "full"])
def test_nightly_on_magento2(dagbag: Any, wms: Any, airflow: dict[str, str], mariadb: LocalMariaDB,
                             stocksync_alone: str, freeze_mode: str) -> None:
    database = f"nightly_mg_{freeze_mode}"
    shop, s = magento_store(mariadb, database)
    skus, available = stock_the_store(wms, 11, s.product, shop)
    a, b, c, d, e, f = skus[:6]
    assert s.place_order("100000001", 1, {a: 2})           # new: the WMS has not seen it
    assert s.place_order("100000002", 1, {b: 3})           # counted by the WMS
    assert s.place_order("100000003", 1, {c: 4})           # counted, 1 shipped by the shop
    assert s.place_order("100000004", 1, {d: 3})           # counted, 1 cancelled
    assert s.place_order("100000005", 1, {e: 2, a: 1})     # new, cancelled in full
    assert s.place_order("100000006", 1, {f: 2})           # counted, refunded before shipping
    s.ship("100000003", "default", {c: 1})
    s.cancel("100000004", {d: 1})
    s.cancel("100000005", {e: 2, a: 1})
    s.credit_memo("100000006", "default", unshipped={f: 2}, returned_to_stock={})
    mg.counted(shop, s, "100000002", "100000003", "100000004", "100000006")
    busy = [sku for sku in skus[6:] if available[sku] >= 20][:4]

    def place(n: int) -> bool:
        return s.place_order(f"2000{n:05d}", 1, {busy[n % len(busy)]: 1})

    for _ in deploy(mariadb, database, stocksync_alone, "magento2", mg.PREFIX, freeze_mode):
        dag_run = while_running(dagbag, shop, place, orders=8)
        assert_applied(stocksync_alone, dag_run, freeze_mode)
        wrong = {sku: (s.salable(sku, 1), mg.expected_salable(s, sku, 1, available[sku])) for sku in skus
                 if s.salable(sku, 1) != mg.expected_salable(s, sku, 1, available[sku])}
        assert wrong == {}
        assert shop.active_freezes() == []
        before = store_rows(mariadb, database, f"SELECT * FROM {mg.PREFIX}inventory_source_item ORDER BY sku")
        again = fresh_dag(dagbag, "inventory_nightly_sync").test()
        assert_applied(stocksync_alone, again, freeze_mode)
        assert store_rows(mariadb, database, f"SELECT * FROM {mg.PREFIX}inventory_source_item ORDER BY sku") == before
    mariadb.drop_database(database)


# ------------------------------------------------------------------------------- PrestaShop

def prestashop_store(mariadb: LocalMariaDB, database: str) -> tuple[PrestaShopShop, ps.Store]:
    """A fresh one-shop PrestaShop store (its own stock rows) and its adapter."""
    mariadb.drop_database(database)
    mariadb.create_database(database)
    shop = PrestaShopShop(f"mysql://stocksync:{mariadb.password}@127.0.0.1:{mariadb.port}/{database}",
                          table_prefix=ps.PREFIX, id_shop=1)
    shop.create_platform_schema()
    shop.migrate()
    s = ps.Store(mariadb, database)
    s.setup(shared=False)
    return shop, s


@pytest.mark.parametrize("freeze_mode", ["apply", "full"])
def test_nightly_on_prestashop(dagbag: Any, wms: Any, airflow: dict[str, str], mariadb: LocalMariaDB,
                               stocksync_alone: str, freeze_mode: str) -> None:
    database = f"nightly_ps_{freeze_mode}"
    shop, s = prestashop_store(mariadb, database)
    skus, available = stock_the_store(wms, 12, s.product, shop)
    a, b, c, d, e, f = skus[:6]
    new = s.place_order({a: 2})                     # payment accepted, the WMS has not seen it
    counted = s.place_order({b: 3})                 # counted by the WMS
    shipped = s.place_order({c: 2})                 # shipped (state 4)
    cancelled = s.place_order({d: 1, a: 1})         # cancelled (state 6)
    refunded = s.place_order({e: 3})                # 2 of 3 refunded, uncounted
    error = s.place_order({f: 2})                   # payment error (state 8)
    assert None not in (new, counted, shipped, cancelled, refunded, error)
    s.set_state(shipped, 4)  # type: ignore[arg-type]
    s.set_state(cancelled, 6)  # type: ignore[arg-type]
    s.set_state(error, 8)  # type: ignore[arg-type]
    s.refund(refunded, e, 2)  # type: ignore[arg-type]
    ps.counted(shop, s, counted)  # type: ignore[arg-type]
    busy = [sku for sku in skus[6:] if available[sku] >= 20][:4]

    def place(n: int) -> bool:
        return s.place_order({busy[n % len(busy)]: 1}) is not None

    for _ in deploy(mariadb, database, stocksync_alone, "prestashop", ps.PREFIX, freeze_mode):
        dag_run = while_running(dagbag, shop, place, orders=8)
        assert_applied(stocksync_alone, dag_run, freeze_mode)
        # orders placed during the run count as uncounted orders (ample stock: never clamped)
        wrong = {sku: (s.quantity(sku), ps.expected_quantity(s, sku, available[sku])) for sku in skus
                 if s.quantity(sku) != ps.expected_quantity(s, sku, available[sku])}
        assert wrong == {}
        assert shop.active_freezes() == []
        before = store_rows(mariadb, database, f"SELECT * FROM {ps.PREFIX}stock_available ORDER BY id_stock_available")
        again = fresh_dag(dagbag, "inventory_nightly_sync").test()
        assert_applied(stocksync_alone, again, freeze_mode)
        assert store_rows(mariadb, database,
                          f"SELECT * FROM {ps.PREFIX}stock_available ORDER BY id_stock_available") == before
    mariadb.drop_database(database)


# ----------------------------------------------------------------------- the ops full push

class PushStore:
    """What the full push test needs of a platform's store: its products, an order the WMS has not
    counted, the storefront's figure, the platform's expected-stock function and its stock table."""

    def __init__(self, platform: str, mariadb: LocalMariaDB, database: str) -> None:
        self.platform = platform
        if platform == "magento2":
            self.shop, self.mg = magento_store(mariadb, database)
            self.prefix, self.table = mg.PREFIX, f"{mg.PREFIX}inventory_source_item ORDER BY sku"
        else:
            self.shop, self.ps = prestashop_store(mariadb, database)
            self.prefix, self.table = ps.PREFIX, f"{ps.PREFIX}stock_available ORDER BY id_stock_available"

    def product(self, sku: str) -> None:
        (self.mg if self.platform == "magento2" else self.ps).product(sku)

    def uncounted_order(self, sku: str, units: int) -> bool:
        if self.platform == "magento2":
            return self.mg.place_order("300000001", 1, {sku: units})
        return self.ps.place_order({sku: units}) is not None

    def figure(self, sku: str) -> float:
        return self.mg.salable(sku, 1) if self.platform == "magento2" else self.ps.quantity(sku)

    def expected(self, sku: str, available: int) -> float:
        if self.platform == "magento2":
            return mg.expected_salable(self.mg, sku, 1, available)
        return ps.expected_quantity(self.ps, sku, available)


@pytest.mark.parametrize("platform", ["magento2", "prestashop"])
def test_full_push_dry_run_subset_and_override(dagbag: Any, wms: Any, airflow: dict[str, str], mariadb: LocalMariaDB,
                                               stocksync_alone: str, platform: str) -> None:
    from airflow.utils.state import DagRunState

    database = f"push_{platform}"
    store = PushStore(platform, mariadb, database)
    skus, _ = stock_the_store(wms, 13, store.product, store.shop)
    assert store.uncounted_order(skus[20], 2)  # uncounted: taken off the WMS's figure
    # a stock take found an aisle empty: 8 of 30 SKUs drop to zero (guardrail: at most 5%)
    items = wms.admin.set_items([{"sku": sku, "on_hand": 0, "non_usable": 0, "allocated": 0} for sku in skus[:8]])
    available = {item["sku"]: item["available"] for item in wms.admin.items()}
    assert all(available[sku] == 0 for sku in skus[:8]) and items

    def push(conf: dict[str, Any]) -> Any:
        return fresh_dag(dagbag, "inventory_full_push").test(run_conf=conf)

    def table() -> list[tuple[Any, ...]]:
        return store_rows(mariadb, database, f"SELECT * FROM {store.table}")

    for _ in deploy(mariadb, database, stocksync_alone, platform, store.prefix, "apply"):
        before = table()
        assert push({"dry_run": False}).state == DagRunState.FAILED  # the guardrail stops it
        assert push({"dry_run": True}).state == DagRunState.SUCCESS
        assert table() == before  # neither wrote anything
        untouched = {sku: store.figure(sku) for sku in skus}

        listed = [skus[0], skus[3]]  # a zeroed SKU and a drifted one
        assert push({"dry_run": False, "skus": listed}).state == DagRunState.SUCCESS
        assert {sku: store.figure(sku) for sku in skus} == {
            **untouched, **{sku: store.expected(sku, available[sku]) for sku in listed}}
        assert any(untouched[sku] != store.expected(sku, available[sku]) for sku in listed)

        reason = "stock take: aisle 4 written off"
        dag_run = push({"dry_run": False, "override_guardrails": True, "override_reason": reason})
        assert dag_run.state == DagRunState.SUCCESS
        assert get_run(stocksync_alone, dag_run.run_id)["override_reason"] == reason
        wrong = {sku: (store.figure(sku), store.expected(sku, available[sku])) for sku in skus
                 if store.figure(sku) != store.expected(sku, available[sku])}
        assert wrong == {}
    mariadb.drop_database(database)
