"""The nightly sync with the shop in another PostgreSQL cluster than stocksync's own database.

stocksync's database here has stocksync's schema only (no `shop` schema at all), and the reference
shop lives in a second cluster on another port: any statement that still joins a shop table from
stocksync's side, or any shop access that bypasses the shop port, fails instead of silently reading
a shop next door. The run goes through Airflow (`dag.test()`), wired by the settings a deployment
sets: `stocksync_conn_id` for stocksync's database, `shop_conn_id` + `shop_platform` for the shop.
The expected stock is domain rule 1 computed here in Python from the shop's raw orders.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devstack.demo_seed import seed_demo
from devstack.local_pg import LocalPostgres
from devstack.local_stack import postgres_connection_json
from include.stocksync.store.db import REFERENCE_SHOP_ADAPTER, connect
from include.stocksync.store.migrations import upgrade
from include.stocksync.sync.pipeline import get_run
from tests.conftest import TEST_PG, fresh_dag

pytestmark = pytest.mark.slow

SHOP_DATABASE = "shop_elsewhere"
STOCKSYNC_DATABASE = "stocksync_alone"
UNSENT_STATUSES = {"placed", "paid", "processing"}


@pytest.fixture(scope="module")
def shop_cluster() -> Iterator[LocalPostgres]:
    """A second cluster (the test cluster's port + 1) holding only the reference shop."""
    cluster = LocalPostgres(name=f"{TEST_PG.name}-shop", port=TEST_PG.port + 1, database=SHOP_DATABASE,
                            scram_iterations=TEST_PG.scram_iterations)
    was_running = cluster.is_running()
    cluster.start(allow_other_port=True)
    cluster.drop_database(SHOP_DATABASE)
    cluster.create_database(SHOP_DATABASE)
    ddl = sql.SQL((REFERENCE_SHOP_ADAPTER / "create_schema.sql").read_text()).format(shop=sql.Identifier("shop"))
    with psycopg.connect(cluster.dsn(SHOP_DATABASE), autocommit=True) as conn:
        conn.execute(ddl)
    yield cluster
    cluster.drop_database(SHOP_DATABASE)
    if not was_running:
        cluster.stop()


@pytest.fixture(scope="module")
def stocksync_alone(pg: LocalPostgres) -> Iterator[str]:
    """stocksync's own database on the test cluster: its migrations, no shop schema."""
    pg.drop_database(STOCKSYNC_DATABASE)
    pg.create_database(STOCKSYNC_DATABASE)
    dsn = pg.dsn(STOCKSYNC_DATABASE)
    upgrade(dsn)
    yield dsn
    pg.drop_database(STOCKSYNC_DATABASE)


@pytest.fixture
def split_deployment(airflow: dict[str, str], shop_cluster: LocalPostgres,
                     stocksync_alone: str) -> Iterator[dict[str, str]]:
    """Airflow's connections and stocksync's settings pointed at the two databases, restored after."""
    shop_dsn = shop_cluster.dsn(SHOP_DATABASE)
    env = {
        "AIRFLOW_CONN_STOCKSYNC_SHOP": postgres_connection_json(shop_dsn),
        "AIRFLOW_CONN_STOCKSYNC_DB": postgres_connection_json(stocksync_alone),
        "STOCKSYNC_STOCKSYNC_CONN_ID": "stocksync_db",
        "STOCKSYNC_SHOP_PLATFORM": "postgres",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield {"shop": shop_dsn, "stocksync": stocksync_alone}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def expected_stock(shop_dsn: str, wms_items: list[dict[str, Any]], watermark: datetime) -> dict[str, int]:
    """Domain rule 1 from the shop's raw rows: max(0, available - units of uncounted orders)."""
    now = datetime.now(timezone.utc)
    with psycopg.connect(shop_dsn) as conn:
        rows = conn.execute("SELECT o.status, o.created_at, o.wms_acknowledged_at, l.sku, l.qty "
                            "FROM shop.orders o JOIN shop.order_lines l USING (order_id)").fetchall()
    unsent: dict[str, int] = defaultdict(int)
    for status, created_at, acknowledged_at, sku, qty in rows:
        if (status in UNSENT_STATUSES and created_at >= now - timedelta(hours=24)
                and (acknowledged_at is None or acknowledged_at > watermark)):
            unsent[sku] += qty
    return {item["sku"]: max(0, item["available"] - unsent[item["sku"]]) for item in wms_items}


def shop_stock(shop_dsn: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(shop_dsn) as conn:
        return {sku: (qty, seq) for sku, qty, seq in conn.execute("SELECT sku, qty, wms_seq FROM shop.stock")}


def test_nightly_sync_with_the_shop_in_another_cluster(dagbag: Any, wms: Any,
                                                       split_deployment: dict[str, str]) -> None:
    from airflow.utils.state import DagRunState

    shop_dsn, stocksync_dsn = split_deployment["shop"], split_deployment["stocksync"]
    seed = seed_demo(shop_dsn, wms.admin, skus=40, seed=5, orders=30)
    assert seed.drifted > 0 and seed.orders_unsent > 0 and seed.orders_acknowledged > 0
    before = shop_stock(shop_dsn)
    wms_items = wms.admin.items()
    with connect(stocksync_dsn) as conn:  # the premise: nothing of the shop in stocksync's database
        assert conn.execute("SELECT to_regnamespace('shop')").fetchone() == (None,)

    dag_run = fresh_dag(dagbag, "inventory_nightly_sync").test()

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)  # the run record is in stocksync's own database
    assert run["status"] == "applied" and run["extracted"] == 40
    expected = expected_stock(shop_dsn, wms_items, run["orders_counted_until"])
    after = shop_stock(shop_dsn)
    assert {sku: qty for sku, (qty, _) in after.items()} == expected
    assert {sku: seq for sku, (_, seq) in after.items()} == {item["sku"]: item["seq"] for item in wms_items}
    assert sum(1 for sku in expected if expected[sku] != before[sku][0]) > 0  # drift was really repaired
    assert run["freeze_seconds"] > 0  # full mode: the shop's checkout was closed, then reopened
    with psycopg.connect(shop_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM shop.checkout_freezes WHERE released_at IS NULL").fetchone() == (0,)
        assert conn.execute("SELECT to_regnamespace('stocksync')").fetchone() == (None,)
    with connect(stocksync_dsn) as conn:
        audited = conn.execute("SELECT count(*) FROM stocksync.sku_outcomes(%s)", (dag_run.run_id,)).fetchone()
    assert audited == (40,)
