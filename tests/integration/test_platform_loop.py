"""The loop's tiers on the platform shops (Magento 2 MSI and PrestaShop on a real MariaDB), end to
end with the real WMS service: the `orders_to_wms` DAG (`dag.test()`) reads the store's orders through the shop port
of the deployment's `shop_platform`, sends them, keeps the WMS's acknowledgement in stocksync's side
table and cancels a cancelled order in the WMS; the intraday sync and its drift record go through
the same port. Expected figures come from the test's own order book and the WMS's admin view
(`test_magento2_stock.expected_salable`, `test_prestashop_stock.expected_quantity`), never from
the adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.local_mariadb import LocalMariaDB
from devstack.local_stack import STOCKSYNC_CONN_ID
from include.stocksync.shop.magento2.adapter import Magento2Shop, create_platform_schema
from include.stocksync.shop.prestashop.adapter import PrestaShopShop
from include.stocksync.store.db import connect
from include.stocksync.sync import drift, pipeline
from tests.conftest import SplitDatabases, fresh_dag
from tests.integration import test_prestashop_stock as ps
from tests.integration.loop_helpers import wms_allocated, wms_post
from tests.integration.mariadb_shops import mariadb_server, shop_dsn, sync  # noqa: F401 (fixture)
from tests.integration.test_magento2_stock import Store, expected_salable
from tests.integration.test_platform_nightly import prestashop_store

pytestmark = pytest.mark.slow

DATABASE = "mg_platform_loop"
CONN_ID = "tiers_magento_shop"
PS_DATABASE = "ps_platform_loop"
PS_CONN_ID = "tiers_prestashop_shop"


@pytest.fixture
def magento_shop(mariadb: LocalMariaDB, clean_split: SplitDatabases, monkeypatch: pytest.MonkeyPatch,
                 ) -> Iterator[tuple[Store, Magento2Shop]]:
    """A Magento store without a table prefix (the platform's default options) that the deployment
    uses: `shop_platform: magento2` over an Airflow MySQL connection, set in the environment."""
    mariadb.drop_database(DATABASE)
    mariadb.create_database(DATABASE)
    dsn = shop_dsn(mariadb, DATABASE)
    shop = Magento2Shop(dsn)
    create_platform_schema(shop)
    shop.migrate()
    store = Store(mariadb, DATABASE)
    store.p = ""
    store.source("default")
    store.stock(1, ["default"])
    monkeypatch.setenv("STOCKSYNC_SHOP_PLATFORM", "magento2")
    monkeypatch.setenv("STOCKSYNC_SHOP_CONN_ID", CONN_ID)
    monkeypatch.setenv("STOCKSYNC_STOCKSYNC_CONN_ID", STOCKSYNC_CONN_ID)  # stocksync's own database on the test PG
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", dsn)
    yield store, shop
    mariadb.drop_database(DATABASE)


def run(dagbag: Any, dag_id: str) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = fresh_dag(dagbag, dag_id).test()
    assert dag_run.state == DagRunState.SUCCESS, (dag_id, dag_run.run_id)
    return dag_run


def units_of(book: dict[Any, dict[str, int]]) -> dict[str, int]:
    """SKU -> units over the test's order book."""
    sent: dict[str, int] = {}
    for lines in book.values():
        for sku, qty in lines.items():
            sent[sku] = sent.get(sku, 0) + qty
    return sent


def order_pushes(stocksync_dsn: str) -> dict[int, datetime]:
    """The order push's record in stocksync's own database: order id -> the WMS's acknowledgement."""
    with connect(stocksync_dsn) as conn:
        return dict(conn.execute("SELECT order_id, acknowledged_at FROM stocksync.order_pushes").fetchall())


def pushes_release_once(dagbag: Any, wms: Any, released: dict[str, int]) -> None:
    """After an order was cancelled in the shop: the next order push cancels it in the WMS, whose
    allocation drops to `released`, and the push after that sends or cancels nothing again."""
    for _ in range(2):
        run(dagbag, "orders_to_wms")
        assert wms_allocated(wms, sorted(released)) == released


def stock_the_store(s: Store, shop: Magento2Shop, wms: Any, count: int) -> dict[str, int]:
    """The WMS's first `count` SKUs as simple products with the WMS's available figure (the
    nightly's write, through the port); returns sku -> WMS available."""
    wms.admin.reset(40, 71)
    items = wms.admin.items()[:count]
    available = {item["sku"]: int(item["available"]) for item in items}
    for sku in available:
        s.product(sku)
    sync(shop, {sku: (qty, 1) for sku, qty in available.items()})
    return available


def test_orders_to_wms_on_magento_sends_acknowledges_and_cancels(dagbag: Any, wms: Any, clean_split: SplitDatabases,
                                                                magento_shop: tuple[Store, Magento2Shop]) -> None:
    s, shop = magento_shop
    available = stock_the_store(s, shop, wms, 6)
    skus = sorted(sku for sku, qty in available.items() if qty >= 6)[:3]
    assert len(skus) == 3
    before = wms_allocated(wms, skus)
    book = {"000000101": {skus[0]: 2, skus[1]: 1}, "000000102": {skus[1]: 3}, "000000103": {skus[2]: 1}}
    for increment_id, lines in book.items():
        assert s.place_order(increment_id, 1, lines)
    # what the storefront shows before the push: the WMS's figure less the uncounted orders
    assert {sku: s.salable(sku, 1) for sku in skus} == {
        sku: expected_salable(s, sku, 1, available[sku]) for sku in skus}

    run(dagbag, "orders_to_wms")

    sent = units_of(book)
    assert wms_allocated(wms, skus) == {sku: before[sku] + sent[sku] for sku in skus}
    acked = dict(s.rows("SELECT increment_id, acknowledged_at FROM stocksync_order_ack_by_store"))
    assert sorted(acked) == sorted(book)
    entity = dict(s.rows("SELECT increment_id, entity_id FROM sales_order"))
    pushes = order_pushes(clean_split.stocksync)
    assert pushes == {entity[i]: acked[i].replace(tzinfo=UTC) for i in book}
    assert shop.unacknowledged_orders(("placed", "paid", "processing")) == []

    # the WMS counts them now: a sync with its new figures shows them taken off once
    for increment_id in book:
        s.orders[increment_id].counted_by_wms = True
    now_available = {item["sku"]: int(item["available"]) for item in wms.admin.items(skus)}
    sync(shop, {sku: (now_available[sku], 2) for sku in skus}, datetime.now(UTC))
    assert {sku: s.salable(sku, 1) for sku in skus} == {
        sku: expected_salable(s, sku, 1, now_available[sku]) for sku in skus}
    assert {sku: now_available[sku] for sku in skus} == {sku: available[sku] - sent[sku] for sku in skus}

    # the shopper cancels 000000102: Magento compensates its reservation and sets the status
    s.cancel("000000102", book["000000102"])
    s.run("UPDATE {p}sales_order SET state = 'canceled', status = 'canceled' WHERE increment_id = %s",
          ("000000102",))
    pushes_release_once(dagbag, wms, {sku: before[sku] + sent[sku] - book["000000102"].get(sku, 0) for sku in skus})


def test_intraday_and_drift_on_magento(dagbag: Any, wms: Any, clean_split: SplitDatabases,
                                       magento_shop: tuple[Store, Magento2Shop]) -> None:
    """The nightly puts the store in line; WMS changes reach it through the intraday sync's feed;
    the next nightly finds no drift. A write from elsewhere is the next night's drift, one SKU."""
    s, shop = magento_shop
    wms.admin.reset(30, 72)
    items = wms.admin.items()
    for item in items:
        s.product(item["sku"])
    # last night's figures, a few off (the guardrails stop a first night that moves everything)
    sync(shop, {item["sku"]: (int(item["available"]) + (2 if n % 10 == 0 else 0), 1) for n, item in enumerate(items)})
    first = run(dagbag, "inventory_nightly_sync")
    available = {item["sku"]: int(item["available"]) for item in wms.admin.items()}
    assert {sku: s.salable(sku, 1) for sku in available} == {
        sku: expected_salable(s, sku, 1, available[sku]) for sku in available}
    assert drift.recorded(clean_split.stocksync, first.run_id) is not None

    moved = sorted(available)[:3]
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": sku, "on_hand": 5 + n} for n, sku in enumerate(moved)]})
    before = {sku: s.salable(sku, 1) for sku in moved}
    wanted = sorted(available)[3]
    assert s.place_order("000000201", 1, {wanted: 1})  # an order the WMS has not counted
    intraday_run = run(dagbag, "inventory_intraday_sync")
    assert pipeline.get_run(clean_split.stocksync, intraday_run.run_id)["status"] == "applied"
    was = available
    available = {item["sku"]: int(item["available"]) for item in wms.admin.items()}
    assert {sku: available[sku] for sku in moved} == {sku: was[sku] + 5 + n for n, sku in enumerate(moved)}
    assert before == {sku: float(was[sku]) for sku in moved}  # the store had the old figures until then
    # the moved SKUs reached the storefront; every SKU shows the WMS's figure less the uncounted order
    assert {sku: s.salable(sku, 1) for sku in available} == {
        sku: expected_salable(s, sku, 1, available[sku]) for sku in available}

    quiet = run(dagbag, "inventory_nightly_sync")
    assert drift.recorded(clean_split.stocksync, quiet.run_id)["skus_off"] == 0

    elsewhere = sorted(available)[5]  # someone edits a source item in the admin
    s.run("UPDATE {p}inventory_source_item SET quantity = quantity + 7 WHERE sku = %s", (elsewhere,))
    s.run("UPDATE {p}cataloginventory_stock_status ss JOIN {p}catalog_product_entity e ON e.entity_id = ss.product_id "
          "SET ss.qty = ss.qty + 7 WHERE e.sku = %s", (elsewhere,))
    night = run(dagbag, "inventory_nightly_sync")
    assert drift.recorded(clean_split.stocksync, night.run_id)["skus_off"] == 1
    assert {sku: s.salable(sku, 1) for sku in available} == {
        sku: expected_salable(s, sku, 1, available[sku]) for sku in available}


# ------------------------------------------------------------------------------- PrestaShop

@pytest.fixture
def prestashop_shop(mariadb: LocalMariaDB, clean_split: SplitDatabases, monkeypatch: pytest.MonkeyPatch,
                    ) -> Iterator[tuple[ps.Store, PrestaShopShop]]:
    """A one-shop PrestaShop store (its own stock rows, table prefix `pst_`) that the deployment
    uses: `shop_platform: prestashop` over an Airflow MySQL connection, set in the environment."""
    shop, store = prestashop_store(mariadb, PS_DATABASE)
    monkeypatch.setenv("STOCKSYNC_SHOP_PLATFORM", "prestashop")
    monkeypatch.setenv("STOCKSYNC_PLATFORM_OPTIONS__PRESTASHOP", json.dumps({"table_prefix": ps.PREFIX}))
    monkeypatch.setenv("STOCKSYNC_SHOP_CONN_ID", PS_CONN_ID)
    monkeypatch.setenv("STOCKSYNC_STOCKSYNC_CONN_ID", STOCKSYNC_CONN_ID)  # stocksync's own database on the test PG
    monkeypatch.setenv(f"AIRFLOW_CONN_{PS_CONN_ID.upper()}", shop_dsn(mariadb, PS_DATABASE))
    yield store, shop
    mariadb.drop_database(PS_DATABASE)


def test_orders_to_wms_on_prestashop_sends_acknowledges_and_cancels(
        dagbag: Any, wms: Any, clean_split: SplitDatabases, prestashop_shop: tuple[ps.Store, PrestaShopShop]) -> None:
    s, shop = prestashop_shop
    wms.admin.reset(40, 73)
    available = {item["sku"]: int(item["available"]) for item in wms.admin.items()[:6]}
    s.product("TEE", combinations=tuple(sorted(available)[:2]))  # two of them are a product's combinations
    for sku in sorted(available)[2:]:
        s.product(sku)
    skus = sorted(sku for sku, qty in available.items() if qty >= 6)[:3]
    assert len(skus) == 3
    sync(shop, {sku: (qty + 1, 1) for sku, qty in available.items()})
    shipped = s.place_order({skus[0]: 1})  # shipped by the shop and the WMS: not an order to send
    assert shipped is not None
    s.set_state(shipped, 4)
    sync(shop, {sku: (qty, 2) for sku, qty in available.items()})
    before = wms_allocated(wms, skus)
    book = {"paid": {skus[0]: 2, skus[1]: 1}, "placed": {skus[1]: 3}, "processing": {skus[2]: 1}}
    ids = {name: s.place_order(lines) for name, lines in book.items()}
    assert None not in ids.values()
    s.set_state(ids["placed"], 10)      # awaiting bank wire
    s.set_state(ids["processing"], 3)   # processing in progress
    # what the storefront shows before the push: the WMS's figure less the uncounted orders
    assert {sku: s.quantity(sku) for sku in skus} == {
        sku: ps.expected_quantity(s, sku, available[sku]) for sku in skus}

    run(dagbag, "orders_to_wms")

    sent = units_of(book)
    assert wms_allocated(wms, skus) == {sku: before[sku] + sent[sku] for sku in skus}
    acked = dict(s.rows("SELECT id_order, acknowledged_at FROM {p}stocksync_order_ack"))
    assert sorted(acked) == sorted(ids.values())
    pushes = order_pushes(clean_split.stocksync)
    assert pushes == {i: acked[i].replace(tzinfo=UTC) for i in ids.values()}
    assert shop.unacknowledged_orders(("placed", "paid", "processing")) == []

    # the WMS counts them now: a sync with its new figures takes them off once
    for i in ids.values():
        s.orders[i].counted_by_wms = True
    now_available = {item["sku"]: int(item["available"]) for item in wms.admin.items(skus)}
    assert now_available == {sku: available[sku] - sent[sku] for sku in skus}
    sync(shop, {sku: (now_available[sku], 3) for sku in skus}, datetime.now(UTC))
    assert {sku: s.quantity(sku) for sku in skus} == {
        sku: ps.expected_quantity(s, sku, now_available[sku]) for sku in skus}
    assert s.product_total(sorted(available)[0]) == sum(s.quantity(sku) for sku in sorted(available)[:2])

    # the shopper's order is cancelled: its state moves to Canceled, the WMS releases it
    s.set_state(ids["placed"], 6)
    pushes_release_once(dagbag, wms, {sku: before[sku] + sent[sku] - book["placed"].get(sku, 0) for sku in skus})


def test_intraday_and_drift_on_prestashop(dagbag: Any, wms: Any, clean_split: SplitDatabases,
                                          prestashop_shop: tuple[ps.Store, PrestaShopShop]) -> None:
    """As on Magento: the nightly puts the store in line, WMS changes reach it intraday, no drift
    after; a write from elsewhere is the next night's drift, one SKU."""
    s, shop = prestashop_shop
    wms.admin.reset(30, 74)
    items = wms.admin.items()
    for item in items:
        s.product(item["sku"])
    sync(shop, {item["sku"]: (int(item["available"]) + (2 if n % 10 == 0 else 0), 1) for n, item in enumerate(items)})
    first = run(dagbag, "inventory_nightly_sync")
    available = {item["sku"]: int(item["available"]) for item in wms.admin.items()}
    assert {sku: s.quantity(sku) for sku in available} == {
        sku: ps.expected_quantity(s, sku, available[sku]) for sku in available}
    assert drift.recorded(clean_split.stocksync, first.run_id) is not None

    moved = sorted(available)[:3]
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": sku, "on_hand": 5 + n} for n, sku in enumerate(moved)]})
    before = {sku: s.quantity(sku) for sku in moved}
    wanted = sorted(available)[3]
    assert s.place_order({wanted: 1}) is not None  # an order the WMS has not counted
    intraday_run = run(dagbag, "inventory_intraday_sync")
    assert pipeline.get_run(clean_split.stocksync, intraday_run.run_id)["status"] == "applied"
    was = available
    available = {item["sku"]: int(item["available"]) for item in wms.admin.items()}
    assert {sku: available[sku] for sku in moved} == {sku: was[sku] + 5 + n for n, sku in enumerate(moved)}
    assert before == {sku: was[sku] for sku in moved}  # the store had the old figures until then
    assert {sku: s.quantity(sku) for sku in available} == {
        sku: ps.expected_quantity(s, sku, available[sku]) for sku in available}

    quiet = run(dagbag, "inventory_nightly_sync")
    assert drift.recorded(clean_split.stocksync, quiet.run_id)["skus_off"] == 0

    elsewhere = sorted(available)[5]  # someone edits the quantity in the back office
    s.run("UPDATE {p}stock_available SET quantity = quantity + 7 WHERE id_product = %s",
          (s.items[elsewhere][0],))
    night = run(dagbag, "inventory_nightly_sync")
    assert drift.recorded(clean_split.stocksync, night.run_id)["skus_off"] == 1
    assert {sku: s.quantity(sku) for sku in available} == {
        sku: ps.expected_quantity(s, sku, available[sku]) for sku in available}
