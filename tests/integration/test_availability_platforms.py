"""The availability service on Magento 2 and PrestaShop stores in MariaDB, end to end.

The real service (its own process, `SHOP_PLATFORM`, a mysql:// `SHOP_DSN`, stocksync's own
PostgreSQL database apart) answers the storefront's inventory script from the store's tables and,
in live mode, writes the WMS simulator's figure back through the platform's adapter. The stores
are driven the way the platforms drive their tables (tests/integration/test_magento2_stock.Store:
MSI checkout, reservations; test_prestashop_stock.Store: order validation on stock_available), and
every figure is checked against what the platform's storefront computes from its own tables
(`Store.salable`, `Store.quantity`) and against the independent expected-stock functions of those
modules, never read back through the adapter.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devstack.availability_process import AvailabilityProcess, new_secret
from devstack.local_mariadb import LocalMariaDB
from include.stocksync.config.settings import PROJECT_ROOT
from include.stocksync.shop import freeze
from include.stocksync.shop.magento2.adapter import Magento2Shop, create_platform_schema
from include.stocksync.shop.port import StockWrite
from include.stocksync.shop.prestashop.adapter import PrestaShopShop
from include.stocksync.store.db import connect
from tests.conftest import TEST_TOKEN, SplitDatabases
from tests.integration import test_magento2_stock as magento
from tests.integration import test_prestashop_stock as presta
from tests.integration.mariadb_shops import mariadb_server, shop_dsn, sync  # noqa: F401 (fixture)
from tests.integration.test_availability import CATALOG, exchange, header_line, platform_request

SECRET_HEADER = "X-Inventory-Secret"


@dataclasses.dataclass
class PlatformStore:
    """One store and what the tests need of it, the same way on both platforms."""

    platform: str
    prefix: str
    dsn: str
    shop: Any  # the adapter (to sync and to acknowledge, as the DAGs do)
    store: Any  # the platform's stand-in (checkout, storefront figure, order book)
    add_product: Callable[[str], None]
    checkout: Callable[[str, int], Any]  # an order of units of one SKU; its key for `counted`
    counted: Callable[[Any], None]  # the WMS acknowledged that order
    storefront: Callable[[str], float]  # what the platform's storefront sells now
    expected: Callable[[str, int], float]  # the rule, from the WMS's figure and the order book


def magento_store(server: LocalMariaDB, database: str) -> PlatformStore:
    shop = Magento2Shop(shop_dsn(server, database), table_prefix=magento.PREFIX, source_code="default")
    create_platform_schema(shop)
    shop.migrate()
    s = magento.Store(server, database)
    s.source("default")
    s.stock(1, ["default"])
    numbers = iter(range(500000001, 600000000))

    def checkout(sku: str, qty: int) -> str:
        increment_id = str(next(numbers))
        assert s.place_order(increment_id, 1, {sku: qty})
        return increment_id

    def add_product(sku: str) -> None:
        s.product(sku)

    return PlatformStore(
        "magento2", magento.PREFIX, shop_dsn(server, database), shop, s, add_product, checkout,
        lambda order: magento.counted(shop, s, order), lambda sku: s.salable(sku, 1),
        lambda sku, available: magento.expected_salable(s, sku, 1, available))


def prestashop_store(server: LocalMariaDB, database: str) -> PlatformStore:
    shop = PrestaShopShop(shop_dsn(server, database), table_prefix=presta.PREFIX, id_shop=1)
    shop.create_platform_schema()
    shop.migrate()
    s = presta.Store(server, database)
    s.setup(shared=False)

    def checkout(sku: str, qty: int) -> int:
        order = s.place_order({sku: qty})
        assert order is not None
        return order

    return PlatformStore(
        "prestashop", presta.PREFIX, shop_dsn(server, database), shop, s,
        lambda sku: s.product(sku.split("/")[0], combinations=(sku,)),  # each SKU a combination of its product
        checkout, lambda order: presta.counted(shop, s, order), lambda sku: float(s.quantity(sku)),
        lambda sku, available: float(presta.expected_quantity(s, sku, available)))


BUILDERS = {"magento2": magento_store, "prestashop": prestashop_store}


def magento_variants(s: magento.Store, parent: str, children: dict[tuple[str, str], str]) -> None:
    """A configurable `parent` with colour and size, each (colour, size) a simple child, the way
    Magento links them (super attributes, super links, the children's option values)."""
    parent_id = s.product(parent, type_id="configurable")
    s.run("INSERT INTO {p}eav_attribute (attribute_id, entity_type_id, attribute_code, frontend_label) "
          "VALUES (93, 4, 'color', 'Color'), (144, 4, 'size', 'Size')")
    s.run("INSERT INTO {p}catalog_product_super_attribute (product_id, attribute_id) VALUES (%s, 93), (%s, 144)",
          (parent_id, parent_id))
    values = sorted({v for pair in children for v in pair})
    option = {value: 10 + i for i, value in enumerate(values)}
    s.run("INSERT INTO {p}eav_attribute_option_value (option_id, store_id, value) VALUES (%s, 0, %s)",
          [(option[value], value) for value in values], many=True)
    for (color, size), sku in children.items():
        child = s.product(sku)
        s.run("INSERT INTO {p}catalog_product_super_link (product_id, parent_id) VALUES (%s, %s)", (child, parent_id))
        s.run("INSERT INTO {p}catalog_product_entity_int (attribute_id, store_id, entity_id, value) "
              "VALUES (93, 0, %s, %s), (144, 0, %s, %s)", (child, option[color], child, option[size]))


def prestashop_variants(s: presta.Store, parent: str, children: dict[tuple[str, str], str]) -> None:
    """A product referenced `parent` whose combinations (colour, size) carry the children's references."""
    s.product(parent, combinations=tuple(children.values()))
    first = next(iter(children.values()))
    s.run("UPDATE {p}product SET reference = %s WHERE id_product = %s", (parent, s.items[first][0]))
    s.run("INSERT INTO {p}attribute_group_lang (id_attribute_group, id_lang, name, public_name) VALUES "
          "(1, 1, 'Color (shirts)', 'Color'), (2, 1, 'Size', 'Size')")
    ids: dict[tuple[int, str], int] = {}
    for group, position in ((1, 0), (2, 1)):
        for value in sorted({pair[position] for pair in children}):
            ids[(group, value)] = s.run("INSERT INTO {p}attribute (id_attribute_group) VALUES (%s)", (group,))
            s.run("INSERT INTO {p}attribute_lang (id_attribute, id_lang, name) VALUES (%s, 1, %s)",
                  (ids[(group, value)], value))
    for (color, size), sku in children.items():
        combination = s.items[sku][1]
        s.run("INSERT INTO {p}product_attribute_combination (id_attribute, id_product_attribute) "
              "VALUES (%s, %s), (%s, %s)", (ids[(1, color)], combination, ids[(2, size)], combination))


VARIANTS = {"magento2": magento_variants, "prestashop": prestashop_variants}


def import_variants_command(store: PlatformStore, stocksync: str) -> subprocess.CompletedProcess[str]:
    """`python -m include.stocksync import-variants` as a deployment runs it: the shop over an Airflow
    MySQL connection, `shop_platform` and its `platform_options` in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKSYNC_")}
    env.update({"PYTHONPATH": str(PROJECT_ROOT), "STOCKSYNC_SHOP_PLATFORM": store.platform,
                "STOCKSYNC_SHOP_CONN_ID": "variants_shop", "AIRFLOW_CONN_VARIANTS_SHOP": store.dsn,
                f"STOCKSYNC_PLATFORM_OPTIONS__{store.platform.upper()}": json.dumps({"table_prefix": store.prefix}),
                "STOCKSYNC_DSN": stocksync})
    return subprocess.run([sys.executable, "-m", "include.stocksync", "import-variants"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def service_settings(store: PlatformStore, stocksync: str, **extra: str) -> dict[str, str]:
    return {"SHOP_PLATFORM": store.platform, "SHOP_DSN": store.dsn, "SHOP_TABLE_PREFIX": store.prefix,
            "STOCKSYNC_DSN": stocksync, "SECRET": new_secret(), "RATE_LIMIT_PER_SECOND": "0",
            "DB_BUDGET_MS": "1000", **extra}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def platform(request: pytest.FixtureRequest, mariadb: LocalMariaDB, split_databases: SplitDatabases,
             wms_process: Any) -> Iterator[tuple[PlatformStore, AvailabilityProcess, AvailabilityProcess]]:
    """A store of the platform, the service answering from it, and the same in live mode."""
    database = f"avail_{request.param}"
    mariadb.drop_database(database)
    mariadb.create_database(database)
    store = BUILDERS[request.param](mariadb, database)
    plain = AvailabilityProcess(service_settings(store, split_databases.stocksync))
    live = AvailabilityProcess(service_settings(store, split_databases.stocksync, LIVE_MODE="true",
                                                WMS_URL=wms_process.url, WMS_TOKEN=TEST_TOKEN, WMS_BUDGET_MS="2000"))
    with plain, live:
        yield store, plain, live
    mariadb.drop_database(database)


def ask(svc: AvailabilityProcess, code: str, quantity: int = 1) -> requests.Response:
    body = f".catalog={CATALOG}&.code={code}&.id=item&.quantity={quantity}&.price=9.90"
    return requests.post(svc.endpoint, data=body.encode(), timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  SECRET_HEADER: svc.secret or ""})


def answer(response: requests.Response) -> tuple[int, str]:
    return int(response.headers["Available"]), response.headers["X-Inventory-Cause"]


def test_the_inventory_script_answers_the_storefront_figure(platform: tuple, clean_split: SplitDatabases) -> None:
    """The storefront's own figure (Magento: index + reservations; PrestaShop: stock_available
    quantity), in the platform protocol's headers exactly as on the reference shop."""
    store, plain, _live = platform
    for name in ("LOOK/M", "GONE/M"):
        store.add_product(name)
    sync(store.shop, {"LOOK/M": (9, 1), "GONE/M": (0, 1)})
    store.checkout("LOOK/M", 2)  # the shop took 2 units off what it sells
    assert store.storefront("LOOK/M") == 7.0

    body = f".catalog={CATALOG}&.code=LOOK/M&.id=item-1&.quantity=2&.price=19.90".encode()
    status, lines = exchange(plain, platform_request(plain, body))
    assert status == 200
    assert header_line(lines, "Available") == "Available: 7"
    assert header_line(lines, "Inventory-Message") == "Inventory-Message: In stock."
    body = f".catalog={CATALOG}&.code=GONE/M&.id=item-2&.quantity=1&.price=5.00".encode()
    status, lines = exchange(plain, platform_request(plain, body))
    assert header_line(lines, "Available") == "Available: 0"
    assert header_line(lines, "Inventory-Message") == "Inventory-Message: Sorry, this item is out of stock."
    assert answer(ask(plain, "NO-SUCH-ITEM")) == (-1, "unknown_sku")
    response = ask(plain, "LOOK/M", quantity=9)
    assert (answer(response), response.headers["Inventory-Message"]) == ((7, "limited"), "Only 7 available.")


def test_a_frozen_checkout_answers_unknown_with_the_shopper_message(platform: tuple) -> None:
    store, plain, _live = platform
    store.add_product("FROZEN/M")
    sync(store.shop, {"FROZEN/M": (5, 1)})
    freeze.set_freeze(store.shop, set_by="nightly__avail", reason="apply", message="Back soon", ttl_seconds=60)
    try:
        response = ask(plain, "FROZEN/M")
        assert answer(response) == (-1, "checkout_frozen")
        assert response.headers["Inventory-Message"] == "Back soon"
    finally:
        freeze.release_freezes(store.shop, set_by="nightly__avail")
    assert answer(ask(plain, "FROZEN/M")) == (5, "in_stock")


def test_live_mode_writes_back_what_the_storefront_then_sells(platform: tuple, clean_split: SplitDatabases,
                                                               wms: Any) -> None:
    """The WMS's newer figure is written through the platform's adapter; the answer is the figure
    the platform's storefront computes afterwards, which is the expected-stock rule's."""
    store, _plain, live = platform
    name = wms.admin.items()[-1]["sku"]  # a SKU the WMS simulator knows (whatever other tests reset it to)
    store.add_product(name)
    sync(store.shop, {name: (50, 0)})
    counted_order = store.checkout(name, 4)  # the WMS allocated it: its 40 already exclude these 4
    store.checkout(name, 3)  # the WMS has not seen this one
    store.counted(counted_order)
    wms.admin.set_items([{"sku": name, "on_hand": 45, "non_usable": 1, "allocated": 4}])  # available 40
    wms_item = wms.admin.items([name])[0]
    assert wms_item["available"] == 40

    response = ask(live, name)
    assert response.headers["X-Inventory-Live"] == "written"
    assert response.headers["X-Inventory-Source"] == "live"
    assert available_now(response) == store.storefront(name) == store.expected(name, 40) == 40 - 3
    with connect(clean_split.stocksync) as conn:  # recorded in stocksync's own database
        audit = conn.execute("SELECT wms_available, wms_seq, adjustment, new_qty, outcome FROM stocksync.sku_audit "
                             "WHERE sku = %s", (name,)).fetchall()
    assert audit == [(40, wms_item["seq"], 3, 37, "changed")]

    # asked again, nothing moved in the WMS: current, no second write
    again = ask(live, name)
    assert (available_now(again), again.headers["X-Inventory-Live"]) == (37, "current")
    # a shopper takes 5 more: the storefront and the next answer agree
    store.checkout(name, 5)
    assert available_now(ask(live, name)) == store.storefront(name) == 32


def available_now(response: requests.Response) -> int:
    return int(response.headers["Available"])


def test_imported_variants_answer_the_chosen_childs_figure(platform: tuple, clean_split: SplitDatabases) -> None:
    """The import command fills sku_map from the store's own variant tables; a shopper's choice on
    the parent's page (its code + the options as the form sends them) is answered with the chosen
    child's figure, as the storefront sells it."""
    store, plain, _live = platform
    children = {("Red", "M"): "TEE-RED-M", ("Blue", "M"): "TEE-BLUE-M", ("Red", "L"): "TEE-RED-L"}
    VARIANTS[store.platform](store.store, "TEE", children)
    sync(store.shop, {"TEE-RED-M": (4, 1), "TEE-BLUE-M": (0, 1), "TEE-RED-L": (9, 1)})
    store.checkout("TEE-RED-L", 2)

    done = import_variants_command(store, clean_split.stocksync)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"platform": store.platform, "variants": 3,
                                                                "codes": 1}
    with connect(clean_split.stocksync) as conn:
        mapped = conn.execute("SELECT code, options_key, sku FROM stocksync.sku_map ORDER BY sku").fetchall()
    # docs/availability.md: the options key is the sorted, case-folded, percent-encoded name=value pairs
    assert mapped == [("TEE", "color=blue&size=m", "TEE-BLUE-M"), ("TEE", "color=red&size=l", "TEE-RED-L"),
                      ("TEE", "color=red&size=m", "TEE-RED-M")]

    def choose(options: str) -> requests.Response:
        body = f".catalog={CATALOG}&.code=TEE&.id=tee&.quantity=1&.price=12.50&{options}"
        return requests.post(plain.endpoint, data=body.encode(), timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      SECRET_HEADER: plain.secret or ""})

    assert answer(choose("Color=Red&Size=L")) == (store.storefront("TEE-RED-L"), "in_stock") == (7, "in_stock")
    assert answer(choose("Size=M&Color=Red")) == (store.storefront("TEE-RED-M"), "in_stock") == (4, "in_stock")
    assert answer(choose("Color=Blue&Size=M")) == (0, "out_of_stock")
    assert answer(choose("Color=Blue&Size=L")) == (-1, "unmapped_options")
    # run again: the same mappings, nothing added
    assert import_variants_command(store, clean_split.stocksync).returncode == 0
    with connect(clean_split.stocksync) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.sku_map").fetchone() == (3,)


def test_a_write_back_that_cannot_take_the_row_lock_falls_back_and_leaves_nothing_locked(
        platform: tuple, clean_split: SplitDatabases, wms: Any) -> None:
    """While an apply holds the SKU's rows (it wrote them and has not committed), the write-back
    gives up within its budget and answers the store's number; its transaction, opened on a thread
    after the answer went out or not, is rolled back: once the apply commits, the next request
    writes the WMS's figure."""
    store, _plain, live = platform
    name = wms.admin.items()[-2]["sku"]
    store.add_product(name)
    sync(store.shop, {name: (12, 0)})
    wms.admin.set_items([{"sku": name, "on_hand": 30, "non_usable": 0, "allocated": 0}])
    with store.shop.apply_session(lock_timeout_seconds=5) as apply:
        [row] = apply.read_stock([name])
        assert apply.write_stock([StockWrite(name, 15, 0)]) == [name]  # same sequence, new figure: locked
        response = ask(live, name)
        assert answer(response) == (12, "in_stock")  # the committed figure, not the apply's 15
        assert response.headers["X-Inventory-Live"] in ("fallback; cause=write_timeout",
                                                        "fallback; cause=write_db_timeout")
    assert store.storefront(name) == 15.0  # the apply committed; nothing of the write-back
    response = ask(live, name)
    assert response.headers["X-Inventory-Live"] == "written"
    assert available_now(response) == store.storefront(name) == store.expected(name, 30) == 30
    assert row.qty == 12
