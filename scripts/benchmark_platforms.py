"""stocksync on the real platforms: 100k and 1M SKUs into Magento 2 (MSI) and PrestaShop on MariaDB.

    bash scripts/benchmark_platforms.sh [--sizes 100000,1000000] [--platforms magento2,prestashop]
                                        [--nights 3] [--out artifacts/benchmark_platforms]

Each night runs the functions the nightly DAG's tasks call (`pipeline.open_run`, `extract`,
`validate`, `merge`, `load`; the DAG itself on both platforms is tests/integration/
test_platform_nightly.py) with the adapter built directly (`Magento2Shop`, `PrestaShopShop`), freeze
mode `none` (the platforms' checkout is closed at the web server, not in the database:
docs/platforms-freeze.md). stocksync's own
database is a database of the benchmark's own (`bench_platforms`) on the checkout's PostgreSQL
cluster ($STOCKSYNC_PG_PORT, as the demo); the shop is a database of its own (`bench_<platform>`) on
the checkout's MariaDB ($STOCKSYNC_MARIADB_PORT); both are dropped at the end, the servers stopped
when the benchmark started them, the WMS simulator ($STOCKSYNC_WMS_PORT, else a free port) with it.

Per platform and size it seeds the WMS and a store in line with it (as after a previous sync: the
catalog, the stock rows, the WMS sequences; Magento: the default source and stock with the legacy
tables; PrestaShop: 3 in 10 SKUs are combinations of a product whose row holds their sum), then
runs `--nights` nights. Before each night, as between two real nights: the orders of the night
before were counted by the WMS and shipped (Magento: the shipment deducts the source item and
compensates the reservation; PrestaShop: the order moves to a shipped state), ~3% of the SKUs move
in the WMS, and ~1% of the SKUs get a new order the WMS has not counted (Magento: a reservation;
PrestaShop: an order decrementing `quantity`). It prints per night: end to end (open_run through
load), each stage, the apply transaction (`locked_seconds`: the shop's transaction from start to
commit) and of it the time stock rows were locked (`rows_locked_seconds`: the adapters lock only the
rows they write, at the write, until the commit: what a checkout or a shipment can wait on), rows
written, and
per platform and size the best and median night, the peak RSS of the process running the nights,
and the anchor: Magento's REST bulk source-items import at about 33 SKUs/s (magento/inventory#2306)
would take the same catalog that many hours. Results go to `<out>/results.json`. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from devstack.demo_seed import WmsAdmin  # noqa: E402
from devstack.local_mariadb import LocalMariaDB, checkout_server  # noqa: E402
from devstack.local_pg import scratch_database  # noqa: E402
from devstack.local_stack import WmsProcess, free_port  # noqa: E402
from include.stocksync.config.settings import process_settings  # noqa: E402
from include.stocksync.store.db import connect  # noqa: E402
from include.stocksync.sync import pipeline  # noqa: E402

TOKEN = os.environ.setdefault("STOCKSYNC_BENCH_WMS_TOKEN", secrets.token_urlsafe(24))
PLATFORMS = ("magento2", "prestashop")
MAGENTO_REST_SKUS_PER_SECOND = 33  # magento/inventory#2306: the bulk source-items endpoint, measured there
# at 1M SKUs; the apply's target is met only by the whole transaction (`locked_seconds`), the rows'
# lock window beside it says what a checkout or a shipment could actually wait on
TARGETS = {"end_to_end_seconds": 20.0, "locked_seconds": 1.0, "rows_locked_seconds": 1.0, "peak_rss_mb": 1024.0}
RUN_OPTIONS = {"page_size": 10000, "freeze_mode": "none"}
CHUNK = 20000
ITEMS_PER_QUERY = 500  # SKUs per GET /_admin/items (their names go in the query string)


def requests_session() -> Any:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def sku_name(n: int) -> str:
    """The simulator's SKU names: SKU-0000001 ... SKU-9999999."""
    return f"SKU-{n:07d}"


# --------------------------------------------------------------------------- the stores
class Store:
    """One platform's store in its MariaDB database, played the way the platform writes it."""

    def __init__(self, server: LocalMariaDB, database: str) -> None:
        self.server = server
        self.database = database
        self.conn = server.connect(database)
        self.conn.autocommit(False)
        self.order_seq = 0

    def run(self, sql: str, params: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def load_seed(self, rows: Iterator[tuple[int, str, int, int]]) -> None:
        """(n, sku, available, seq) of every WMS SKU into the helper table `bench_seed`."""
        self.run("DROP TABLE IF EXISTS bench_seed")
        self.run("CREATE TABLE bench_seed (n int unsigned NOT NULL PRIMARY KEY, sku varchar(64) NOT NULL, "
                 "qty int NOT NULL, seq bigint NOT NULL, KEY (sku)) ENGINE=InnoDB")
        batch: list[tuple[int, str, int, int]] = []
        with self.conn.cursor() as cur:
            for row in rows:
                batch.append(row)
                if len(batch) == CHUNK:
                    cur.executemany("INSERT INTO bench_seed (n, sku, qty, seq) VALUES (%s, %s, %s, %s)", batch)
                    batch = []
            if batch:
                cur.executemany("INSERT INTO bench_seed (n, sku, qty, seq) VALUES (%s, %s, %s, %s)", batch)
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class MagentoStore(Store):
    """Default source `default` in the default stock 1, every SKU a simple product."""

    def seed(self, shop: Any) -> None:
        from include.stocksync.shop.magento2.adapter import create_platform_schema

        create_platform_schema(shop)
        shop.migrate()
        for sql in (
            "INSERT INTO inventory_source (source_code, name) VALUES ('default', 'Default Source')",
            "INSERT INTO inventory_stock (stock_id, name) VALUES (1, 'Default Stock')",
            "INSERT INTO inventory_source_stock_link (stock_id, source_code, priority) VALUES (1, 'default', 1)",
            "INSERT INTO catalog_product_entity (entity_id, sku, type_id) SELECT n, sku, 'simple' FROM bench_seed",
            "INSERT INTO cataloginventory_stock_item (product_id, stock_id, qty, is_in_stock, website_id) "
            "SELECT n, 1, qty, qty > 0, 0 FROM bench_seed",
            "INSERT INTO cataloginventory_stock_status (product_id, website_id, stock_id, qty, stock_status) "
            "SELECT n, 0, 1, qty, qty > 0 FROM bench_seed",
            "INSERT INTO inventory_source_item (source_code, sku, quantity, status) "
            "SELECT 'default', sku, qty, qty > 0 FROM bench_seed",
            "INSERT INTO stocksync_sku_state (source_code, sku, wms_seq) SELECT 'default', sku, seq FROM bench_seed",
        ):
            self.run(sql)
        self.conn.commit()

    def ship_and_acknowledge(self, orders: list[tuple[str, str, int]]) -> None:
        """The WMS counted last night's orders; Magento ships them: the source item (and the legacy
        item of the default source) loses the units, a compensating reservation closes the order."""
        from include.stocksync.shop.magento2.adapter import acknowledge_orders

        shipped = [(qty, sku) for _inc, sku, qty in orders]
        compensations = [(sku, qty, _metadata("shipment_created", inc)) for inc, sku, qty in orders]
        with self.conn.cursor() as cur:
            cur.executemany("UPDATE inventory_source_item SET quantity = quantity - %s WHERE source_code = 'default' "
                            "AND sku = %s", shipped)
            cur.executemany("UPDATE cataloginventory_stock_item i JOIN catalog_product_entity e ON e.entity_id = "
                            "i.product_id SET i.qty = i.qty - %s WHERE e.sku = %s", shipped)
            cur.executemany("INSERT INTO inventory_reservation (stock_id, sku, quantity, metadata) VALUES "
                            "(1, %s, %s, %s)", compensations)
        self.conn.commit()
        return acknowledge_orders(self.shop, {inc: _now() for inc, _sku, _qty in orders})

    def place_orders(self, skus: list[str], rng: random.Random) -> list[tuple[str, str, int]]:
        """Checkout: a reservation per order (no row lock, as MSI places orders)."""
        placed = []
        for sku in skus:
            self.order_seq += 1
            placed.append((f"{self.order_seq:09d}", sku, 1 + rng.randrange(2)))
        reservations = [(sku, -qty, _metadata("order_placed", inc)) for inc, sku, qty in placed]
        with self.conn.cursor() as cur:
            cur.executemany("INSERT INTO inventory_reservation (stock_id, sku, quantity, metadata) VALUES "
                            "(1, %s, %s, %s)", reservations)
        self.conn.commit()
        return placed

    def sellable(self, skus: list[str]) -> dict[str, int]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT si.sku, si.quantity + COALESCE((SELECT SUM(r.quantity) FROM inventory_reservation r "
                        "WHERE r.sku = si.sku AND r.stock_id = 1), 0) FROM inventory_source_item si "
                        "WHERE si.source_code = 'default' AND si.sku IN %s", (tuple(skus),))
            return {sku: int(qty) for sku, qty in cur.fetchall()}


class PrestaShopStore(Store):
    """One shop (id 1) in a group that does not share stock. Of every 10 SKUs, 3 are combinations of
    one product (its id_product_attribute = 0 row holds their sum), 7 are products of their own."""

    def seed(self, shop: Any) -> None:
        shop.create_platform_schema()
        shop.migrate()
        # SKU n: block b = (n-1) div 10, position k = (n-1) mod 10; k < 3: combination k of product b*8+1
        ids = ("(n - 1) DIV 10 AS b, (n - 1) MOD 10 AS k")
        for sql in (
            "INSERT INTO ps_shop_group (id_shop_group, name, share_stock) VALUES (1, 'Default', 0)",
            "INSERT INTO ps_shop (id_shop, id_shop_group, name) VALUES (1, 1, 'Shop')",
            "INSERT INTO ps_order_state (id_order_state, shipped) VALUES (2, 0), (4, 1), (6, 0), (8, 0)",
            f"INSERT INTO ps_product (id_product, reference, active) SELECT b * 8 + 1, '', 1 FROM "
            f"(SELECT {ids} FROM bench_seed) s WHERE k = 0",
            f"INSERT INTO ps_product (id_product, reference, active) SELECT b * 8 + k - 1, sku, 1 FROM "
            f"(SELECT sku, {ids} FROM bench_seed) s WHERE k >= 3",
            f"INSERT INTO ps_product_attribute (id_product_attribute, id_product, reference) "
            f"SELECT b * 3 + k + 1, b * 8 + 1, sku FROM (SELECT sku, {ids} FROM bench_seed) s WHERE k < 3",
            f"INSERT INTO ps_stock_available (id_product, id_product_attribute, id_shop, id_shop_group, quantity, "
            f"physical_quantity) SELECT IF(k < 3, b * 8 + 1, b * 8 + k - 1), IF(k < 3, b * 3 + k + 1, 0), 1, 0, qty, "
            f"qty FROM (SELECT qty, {ids} FROM bench_seed) s",
            f"INSERT INTO ps_stock_available (id_product, id_product_attribute, id_shop, id_shop_group, quantity, "
            f"physical_quantity) SELECT b * 8 + 1, 0, 1, 0, SUM(qty), SUM(qty) FROM (SELECT qty, {ids} FROM "
            f"bench_seed) s WHERE k < 3 GROUP BY b",
            "INSERT INTO ps_stocksync_sku_state (scope, sku, wms_seq) SELECT 'shop:1', sku, seq FROM bench_seed",
        ):
            self.run(sql)
        self.conn.commit()

    def _row_ids(self, sku: str) -> tuple[int, int]:
        n = int(sku[4:])
        b, k = divmod(n - 1, 10)
        return (b * 8 + 1, b * 3 + k + 1) if k < 3 else (b * 8 + k - 1, 0)

    def ship_and_acknowledge(self, orders: list[tuple[str, str, int]]) -> None:
        """The WMS counted last night's orders; PrestaShop ships them (a shipped state; `quantity`
        was taken at checkout, `physical_quantity` follows the shipment)."""
        from include.stocksync.shop.prestashop.adapter import acknowledge_orders

        with self.conn.cursor() as cur:
            cur.executemany("UPDATE ps_orders SET current_state = 4 WHERE id_order = %s",
                            [(int(inc),) for inc, _sku, _qty in orders])
        self.conn.commit()
        return acknowledge_orders(self.shop, {int(inc): _now() for inc, _sku, _qty in orders})

    def place_orders(self, skus: list[str], rng: random.Random) -> list[tuple[str, str, int]]:
        """Checkout: the order and its line, `quantity` of the combination (and of its product) row
        decremented, as PrestaShop's order validation does."""
        placed = []
        with self.conn.cursor() as cur:
            for sku in skus:
                qty = 1 + rng.randrange(2)
                id_product, id_attr = self._row_ids(sku)
                cur.execute("INSERT INTO ps_orders (id_shop_group, id_shop, current_state, valid) VALUES (1, 1, 2, 1)")
                id_order = int(cur.lastrowid)
                cur.execute("INSERT INTO ps_order_detail (id_order, id_shop, product_id, product_attribute_id, "
                            "product_quantity, product_reference) VALUES (%s, 1, %s, %s, %s, %s)",
                            (id_order, id_product, id_attr, qty, sku))
                cur.execute("UPDATE ps_stock_available SET quantity = quantity - %s WHERE id_product = %s AND "
                            "id_product_attribute IN (%s, 0) AND id_shop = 1 AND id_shop_group = 0",
                            (qty, id_product, id_attr))
                placed.append((str(id_order), sku, qty))
        self.conn.commit()
        return placed

    def sellable(self, skus: list[str]) -> dict[str, int]:
        found = {}
        with self.conn.cursor() as cur:
            for sku in skus:
                id_product, id_attr = self._row_ids(sku)
                cur.execute("SELECT quantity FROM ps_stock_available WHERE id_product = %s AND "
                            "id_product_attribute = %s AND id_shop = 1 AND id_shop_group = 0", (id_product, id_attr))
                row = cur.fetchone()
                if row:
                    found[sku] = int(row[0])
        return found


def _metadata(event: str, increment_id: str) -> str:
    return json.dumps({"event_type": event, "object_type": "order", "object_id": "",
                       "object_increment_id": increment_id})


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def build(platform: str, server: LocalMariaDB, database: str) -> tuple[Store, Any]:
    from include.stocksync.shop.magento2.adapter import Magento2Shop
    from include.stocksync.shop.prestashop.adapter import PrestaShopShop

    dsn = f"mysql://stocksync:{quote(server.password, safe='')}@127.0.0.1:{server.port}/{database}"
    store: Store
    if platform == "magento2":
        shop: Any = Magento2Shop(dsn)
        store = MagentoStore(server, database)
    else:
        shop = PrestaShopShop(dsn, table_prefix="ps_")
        store = PrestaShopStore(server, database)
    store.shop = shop  # type: ignore[attr-defined]
    return store, shop


# --------------------------------------------------------------------------- one platform and size
def seed(dsn: str, wms: WmsAdmin, wms_url: str, store: Store, shop: Any, skus: int) -> None:
    """The WMS with `skus` SKUs and a store in line with it, as after a previous sync."""
    wms.reset(skus, skus)
    settings = process_settings().for_run(RUN_OPTIONS)
    run_id = f"bench-seed-{skus}"
    pipeline.open_run(dsn, run_id=run_id, dag_id="bench", settings=settings)
    # the walk is bounded by the shop's catalog: the seed walk reads an empty one, so the catalog
    # comes from the simulator's names first
    store.load_seed((n, sku_name(n), 0, 0) for n in range(1, skus + 1))
    store.seed(shop)
    result = pipeline.extract(dsn, run_id=run_id, session=requests_session(), base_url=wms_url, shop=shop)
    with connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT sku, available::int, seq::bigint FROM stocksync."{result.staging_table}"')
        rows = [(int(sku[4:]), sku, qty, seq) for sku, qty, seq in cur]
        conn.execute(f'DROP TABLE stocksync."{result.staging_table}"')
        conn.execute("DELETE FROM stocksync.sync_runs WHERE run_id = %s", (run_id,))
        conn.commit()
    # the store again, now with the WMS's figures and sequences
    store.load_seed(iter(rows))
    with store.conn.cursor() as cur:
        cur.execute("DROP VIEW IF EXISTS inventory_stock_1")
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = [t for (t, _kind) in cur.fetchall() if t != "bench_seed"]
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in tables:
            cur.execute(f"DROP TABLE `{table}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    store.conn.commit()
    shop._migrated = False
    store.seed(shop)
    store.run("DROP TABLE bench_seed")
    store.conn.commit()


def night(dsn: str, wms: WmsAdmin, wms_url: str, store: Store, shop: Any, skus: int, rng: random.Random,
          previous_orders: list[tuple[str, str, int]], index: int) -> tuple[dict[str, Any], list[tuple[str, str, int]]]:
    """Between two nights (last night's orders counted and shipped, 3% moved, 1% ordered), then
    one night through the pipeline's functions; its figures and the orders it left uncounted."""
    if previous_orders:
        counted = {sku: qty for _inc, sku, qty in previous_orders}
        wanted = sorted(counted)  # asked for in pieces: 10k SKUs in one query string is over any URL limit
        current = {item["sku"]: item for start in range(0, len(wanted), ITEMS_PER_QUERY)
                   for item in wms.items(wanted[start:start + ITEMS_PER_QUERY])}
        wms.set_items([{"sku": sku, "allocated": int(current[sku]["allocated"]) + qty}
                       for sku, qty in counted.items() if int(current[sku]["available"]) >= qty])
        store.ship_and_acknowledge(previous_orders)
    moved = rng.sample(range(1, skus + 1), k=max(1, int(skus * 0.03)))
    for start in range(0, len(moved), CHUNK):
        wms.set_items([{"sku": sku_name(n), "on_hand": rng.randint(50, 500), "non_usable": 0, "allocated": 0}
                       for n in moved[start:start + CHUNK]])
    ordered = [sku_name(n) for n in rng.sample(range(1, skus + 1), k=max(1, int(skus * 0.01)))]
    in_stock = [sku for sku, qty in store.sellable(ordered).items() if qty >= 2]
    orders = store.place_orders(in_stock, rng)

    settings = process_settings().for_run(RUN_OPTIONS)
    run_id = f"bench-{shop.platform}-{skus}-{index}"
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pipeline.open_run(dsn, run_id=run_id, dag_id="bench", settings=settings)
    t = time.perf_counter()
    pipeline.extract(dsn, run_id=run_id, session=requests_session(), base_url=wms_url, shop=shop)
    timings["extract"] = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.validate(dsn, run_id=run_id, shop=shop)
    timings["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = pipeline.merge(dsn, run_id=run_id, shop=shop)
    timings["merge"] = time.perf_counter() - t
    t = time.perf_counter()
    applied = pipeline.load(dsn, run_id=run_id, plan_table=plan.plan_table, shop=shop)
    timings["load"] = time.perf_counter() - t
    end_to_end = time.perf_counter() - started
    if applied.status != "applied":
        raise RuntimeError(f"night {index}: the apply ended {applied.status}")
    figures = {"end_to_end_seconds": round(end_to_end, 3), "stages": {k: round(v, 3) for k, v in timings.items()},
               "locked_seconds": round(applied.locked_seconds, 3),
               "rows_locked_seconds": round(applied.rows_locked_seconds, 3), "rows_written": applied.rows_written,
               "moved_skus": applied.moved_skus, "apply_timings": applied.as_dict()["timings"],
               "orders_placed": len(orders), "wms_moved": len(moved)}
    print(f"  {shop.platform:<10} {skus:>9,} night {index}: end to end {end_to_end:6.2f}s  apply transaction "
          f"{applied.locked_seconds:6.3f}s (rows locked {applied.rows_locked_seconds:.3f}s)  "
          f"written {applied.rows_written:,}  ("
          + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()) + ")", flush=True)
    return figures, orders


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in its own process per platform and size (its peak RSS is the figure)."""
    platform, skus = args.worker.split(":")
    size = int(skus)
    dsn, wms_url = os.environ["STOCKSYNC_BENCH_DSN"], args.wms_url
    server = checkout_server()
    database = f"bench_{platform}"
    server.drop_database(database)
    server.create_database(database)
    store, shop = build(platform, server, database)
    wms = WmsAdmin(wms_url, TOKEN)
    rng = random.Random(size)
    try:
        t = time.perf_counter()
        seed(dsn, wms, wms_url, store, shop, size)
        print(f"  {platform:<10} {size:>9,} seeded in {time.perf_counter() - t:.1f}s", flush=True)
        nights, orders = [], []
        for index in range(args.nights):
            figures, orders = night(dsn, wms, wms_url, store, shop, size, rng, orders, index)
            nights.append(figures)
    finally:
        store.close()
        server.drop_database(database)
    result: dict[str, Any] = {"platform": platform, "skus": size, "nights": nights,
                              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    for figure in ("end_to_end_seconds", "locked_seconds", "rows_locked_seconds"):
        values = [n[figure] for n in nights]
        result[figure] = {"best": min(values), "median": round(statistics.median(values), 3), "max": max(values)}
    return result


# --------------------------------------------------------------------------- report
def anchor_hours(skus: int) -> float:
    return skus / MAGENTO_REST_SKUS_PER_SECOND / 3600


def table(results: list[dict[str, Any]]) -> str:
    header = (f"{'platform':<10} | {'SKUs':>9} | {'end to end best/median':>22} | {'apply txn best/median':>21} | "
              f"{'rows locked best/median':>23} | {'peak RSS':>8} | {'Magento REST bulk at 33 SKUs/s':>30}")
    lines = [header, "-" * len(header)]
    for r in results:
        e, a, rl = r["end_to_end_seconds"], r["locked_seconds"], r["rows_locked_seconds"]
        lines.append(f"{r['platform']:<10} | {r['skus']:>9,} | {e['best']:>9.2f}s / {e['median']:>7.2f}s | "
                     f"{a['best']:>8.3f}s / {a['median']:>7.3f}s | {rl['best']:>10.3f}s / {rl['median']:>7.3f}s | "
                     f"{r['peak_rss_mb']:>6.0f}MB | "
                     f"{anchor_hours(r['skus']):>27.1f} h")
    return "\n".join(lines)


def target_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        if r["skus"] != 1_000_000:
            continue
        for figure, limit in TARGETS.items():
            value = r[figure]["median"] if isinstance(r[figure], dict) else r[figure]
            lines.append(f"  {'met   ' if value <= limit else 'MISSED'} {r['platform']} {figure} at 1,000,000 "
                         f"(median): {value} (max {limit})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--platforms", default=",".join(PLATFORMS))
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "artifacts" / "benchmark_platforms")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--wms-url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result_file).write_text(json.dumps(measure(args), default=str))
        return 0
    platforms = [p for p in args.platforms.split(",") if p]
    unknown = set(platforms) - set(PLATFORMS)
    if unknown:
        parser.error(f"--platforms: {sorted(unknown)} unknown; choose from {', '.join(PLATFORMS)}")
    os.umask(0o077)
    args.out.mkdir(parents=True, exist_ok=True)
    server = checkout_server()
    server_was_running = server.is_running()
    server.start(allow_other_port=True)
    results = []
    try:
        with scratch_database("bench_platforms") as pg:
            dsn = pg.dsn()
            pipeline.apply_schema(dsn)
            wms_port = int(os.environ.get("STOCKSYNC_WMS_PORT", "0")) or free_port()
            wms_process = WmsProcess(wms_port, TOKEN, skus=10)
            try:
                for size in (int(s) for s in args.sizes.split(",")):
                    for platform in platforms:
                        result_file = args.out / f"result_{platform}_{size}.json"
                        # the DSN carries the password: environment, not command line
                        subprocess.run([sys.executable, __file__, "--worker", f"{platform}:{size}", "--wms-url",
                                        wms_process.url, "--result-file", str(result_file),
                                        "--nights", str(args.nights)],
                                       check=True, env={**os.environ, "STOCKSYNC_BENCH_DSN": dsn,
                                                        "STOCKSYNC_MARIADB_PORT": str(server.port)})
                        results.append(json.loads(result_file.read_text()))
            finally:
                wms_process.stop()
    finally:
        if not server_was_running:
            server.stop()
    summary = {"results": results, "machine": {"cores": os.cpu_count()},
               "anchor": {"magento_rest_bulk_skus_per_second": MAGENTO_REST_SKUS_PER_SECOND,
                          "source": "magento/inventory#2306"}}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    print()
    print(table(results))
    print("\nthe apply transaction: the shop's transaction of the apply, from its start to its commit (an "
          "upper bound of what checkout (PrestaShop) or a shipment (Magento) of a written SKU could wait)")
    print("performance targets on this machine (1M SKUs):")
    print("\n".join(target_lines(results)))
    print(f"\nresults: {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
