"""A small Magento 2 or PrestaShop store on the local MariaDB, for development: the platform's
tables (include/sql/<platform>/platform_schema.sql), a catalog, a few orders in the states that
matter, and one sync through the shop port from a deterministic stand-in for the WMS's figures.

    PYTHONPATH=. .venv/bin/python -m devstack.platform_seed magento2 [--skus 200] [--seed 7]
    PYTHONPATH=. .venv/bin/python -m devstack.platform_seed prestashop
    PYTHONPATH=. .venv/bin/python -m devstack.platform_seed stop

The server is `.local/mariadb/main` on $STOCKSYNC_MARIADB_PORT (default 33306); the store is the
database `magento2` or `prestashop` (recreated each time: demo data only). Prints the time the
apply transaction took and a few SKUs as the storefront sells them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from devstack.local_mariadb import LocalMariaDB, checkout_server
from include.stocksync.shop.magento2.adapter import Magento2Shop, create_platform_schema
from include.stocksync.shop.magento2.adapter import acknowledge_orders as magento_ack
from include.stocksync.shop.port import DemandQuery, StockWrite
from include.stocksync.shop.prestashop.adapter import PrestaShopShop
from include.stocksync.shop.prestashop.adapter import acknowledge_orders as prestashop_ack

BATCH = 5000


class _Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def write_row(self, row: Sequence[Any]) -> None:
        self.rows.append(tuple(row))

    def write(self, buffer: bytes | str) -> None:
        raise TypeError("the MySQL-family adapters stream rows")


def _dsn(server: LocalMariaDB, database: str) -> str:
    return f"mysql://stocksync:{quote(server.password, safe='')}@127.0.0.1:{server.port}/{database}"


def _insert(conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        for start in range(0, len(rows), BATCH):
            cur.executemany(sql, rows[start:start + BATCH])


def seed_magento(server: LocalMariaDB, skus: int, rng: random.Random,
                 names: list[str] | None = None) -> tuple[Magento2Shop, list[str]]:
    """A Magento store of `skus` products (`names`: their SKUs; default MG-0000000...)."""
    server.drop_database("magento2")
    server.create_database("magento2")
    shop = Magento2Shop(_dsn(server, "magento2"))
    create_platform_schema(shop)
    shop.migrate()
    names = names or [f"MG-{i:07d}" for i in range(skus)]
    conn = server.connect("magento2")
    try:
        _insert(conn, "INSERT INTO catalog_product_entity (entity_id, sku) VALUES (%s, %s)",
                [(i + 1, sku) for i, sku in enumerate(names)])
        _insert(conn, "INSERT INTO cataloginventory_stock_item (product_id, stock_id, qty, is_in_stock) "
                      "VALUES (%s, 1, 0, 0)", [(i + 1,) for i in range(skus)])
        with conn.cursor() as cur:
            cur.execute("INSERT INTO inventory_source (source_code, name) VALUES ('default', 'Default Source')")
            cur.execute("INSERT INTO inventory_stock (stock_id, name) VALUES (1, 'Default Stock')")
            cur.execute("INSERT INTO inventory_source_stock_link (stock_id, source_code, priority) "
                        "VALUES (1, 'default', 1)")
        # orders: each a -qty reservation named by its increment id; the first half counted by the WMS
        reservations = []
        for n in range(max(4, skus // 20)):
            sku = rng.choice(names)
            meta = json.dumps({"event_type": "order_placed", "object_type": "order", "object_id": "",
                               "object_increment_id": f"{100000001 + n}"})
            reservations.append((sku, -rng.randint(1, 3), meta))
        _insert(conn, "INSERT INTO inventory_reservation (stock_id, sku, quantity, metadata) VALUES (1, %s, %s, %s)",
                reservations)
        conn.commit()
    finally:
        conn.close()
    counted = {f"{100000001 + n}": datetime.now(UTC) - timedelta(hours=1) for n in range(len(reservations) // 2)}
    magento_ack(shop, counted)
    return shop, names


def seed_prestashop(server: LocalMariaDB, skus: int, rng: random.Random,
                    names: list[str] | None = None) -> tuple[PrestaShopShop, list[str]]:
    """A PrestaShop store of `skus` products (`names`: their references; default PS-0000000...)."""
    server.drop_database("prestashop")
    server.create_database("prestashop")
    shop = PrestaShopShop(_dsn(server, "prestashop"))
    shop.create_platform_schema()
    shop.migrate()
    names = names or [f"PS-{i:07d}" for i in range(skus)]
    conn = server.connect("prestashop")
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO ps_shop_group (id_shop_group, name) VALUES (1, 'Default')")
            cur.execute("INSERT INTO ps_shop (id_shop, id_shop_group, name) VALUES (1, 1, 'Shop')")
            cur.executemany("INSERT INTO ps_order_state (id_order_state, shipped) VALUES (%s, %s)",
                            [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 0), (7, 0), (8, 0)])
        _insert(conn, "INSERT INTO ps_product (id_product, reference, active) VALUES (%s, %s, 1)",
                [(i + 1, sku) for i, sku in enumerate(names)])
        _insert(conn, "INSERT INTO ps_stock_available (id_product, id_product_attribute, id_shop, id_shop_group, "
                      "quantity) VALUES (%s, 0, 1, 0, 0)", [(i + 1,) for i in range(skus)])
        orders, lines = [], []
        for n in range(max(4, skus // 20)):
            orders.append((n + 1, rng.choice([2, 3, 4, 6])))
            lines.append((n + 1, rng.randrange(skus) + 1, rng.randint(1, 3)))
        _insert(conn, "INSERT INTO ps_orders (id_order, id_shop, current_state, valid) VALUES (%s, 1, %s, 1)", orders)
        _insert(conn, "INSERT INTO ps_order_detail (id_order, product_id, product_attribute_id, product_quantity) "
                      "VALUES (%s, %s, 0, %s)", lines)
        conn.commit()
    finally:
        conn.close()
    prestashop_ack(shop, {n + 1: datetime.now(UTC) - timedelta(hours=1) for n in range(len(orders) // 2)})
    return shop, names


def sync_once(shop: Any, snapshot: dict[str, tuple[int, int]]) -> tuple[int, float]:
    """One apply through the port; returns (SKUs written, seconds the apply transaction took)."""
    query = DemandQuery(include_orders=True, unsent_cutoff_seconds=86400.0, unsent_statuses=(),
                        watermark=datetime.now(UTC), watermark_source="request_time", include_carts=False,
                        cart_cutoff_seconds=86400.0)
    started = time.perf_counter()
    with shop.apply_session(lock_timeout_seconds=10) as session:
        sink = _Rows()
        session.stream_demand(query, sink)
        unsent = {sku: units for sku, units, _carts in sink.rows}
        written = session.write_stock(StockWrite(sku, max(0, qty - unsent.get(sku, 0)), seq)
                                      for sku, (qty, seq) in snapshot.items())
    return len(written), time.perf_counter() - started


def demo_store(platform: str, wms_items: list[dict[str, Any]], seed: int) -> dict[str, str]:
    """`demo --shop magento2|prestashop`: a store in the dev MariaDB with the WMS's catalog, its stock
    as of yesterday (the WMS's figures, a tenth of them drifted) and a few orders; returns the
    environment that points the nightly at it (a mysql Airflow connection, `shop_platform`)."""
    server = checkout_server()
    server.start()
    rng = random.Random(seed)
    names = [item["sku"] for item in wms_items]
    seeder = seed_magento if platform == "magento2" else seed_prestashop
    shop, _ = seeder(server, len(names), rng, names)
    sync_once(shop, {item["sku"]: (max(0, int(item["available"]) + (rng.randint(-5, 5) if rng.random() < 0.1 else 0)),
                                   0) for item in wms_items})
    connection = {"conn_type": "mysql", "host": "127.0.0.1", "port": server.port, "login": "stocksync",
                  "password": server.password, "schema": platform}
    return {"AIRFLOW_CONN_STOCKSYNC_SHOP": json.dumps(connection), "STOCKSYNC_SHOP_PLATFORM": platform}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devstack.platform_seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("platform", choices=["magento2", "prestashop", "stop"])
    parser.add_argument("--skus", type=int, default=200, help="catalog size (default 200)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    server = checkout_server()
    if args.platform == "stop":
        server.stop()
        print("stocksync: the local MariaDB is stopped")
        return 0
    if not 1 <= args.skus <= 2_000_000:
        parser.error("--skus must be between 1 and 2000000")
    server.start()
    rng = random.Random(args.seed)
    seeder = seed_magento if args.platform == "magento2" else seed_prestashop
    shop, names = seeder(server, args.skus, rng)
    snapshot = {sku: (rng.randint(0, 50), 1) for sku in names}
    written, first = sync_once(shop, snapshot)
    moving = rng.sample(names, max(1, len(names) * 3 // 100))
    for sku in moving:  # a night later: 3% of the SKUs moved (a new WMS sequence for those)
        snapshot[sku] = (rng.randint(0, 50), 2)
    moved, second = sync_once(shop, snapshot)
    stock = _Rows()
    shop.stream_stock(stock)
    print(f"stocksync: {args.platform} store with {len(names)} SKUs on MariaDB port {server.port}: first sync wrote "
          f"{written} SKUs, apply {first:.2f} s; 3% moving: wrote {moved}, apply {second:.2f} s")
    for sku, qty, seq in sorted(stock.rows)[:5]:
        print(f"  {sku}: sellable {qty} (WMS seq {seq})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
