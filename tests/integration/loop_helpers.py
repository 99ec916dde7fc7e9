"""Helpers shared by the order-push, intraday and trading-day tests: settings with a
`loop` section of the test's choosing, a WMS client with the bearer token, shop orders through the
shop's real checkout, and the WMS's view of them."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import requests

from devstack.local_stack import postgres_connection_json, stocksync_connection_env
from include.stocksync.config.settings import LoopSettings, Settings, load_settings
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync.order_push import WmsOrders
from tests.conftest import TEST_TOKEN


def loop_settings(**loop: Any) -> Settings:
    """The test config with these `loop` entries changed."""
    settings = load_settings()
    return settings.model_copy(update={"loop": LoopSettings(**{**settings.loop.model_dump(), **loop})})


def wms_session() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    return session


def orders_client(wms: Any, timeout: float = 10.0) -> WmsOrders:
    return WmsOrders(wms_session(), wms.url, timeout=timeout)


def place(dsn: str, lines: list[tuple[str, int]], customer: str = "test") -> int:
    """An order through the shop's checkout (`shop.place_order`); fails the test if refused."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT shop.place_order(%s, %s, %s)",
                           ([s for s, _ in lines], [q for _, q in lines], customer)).fetchone()
        assert row is not None
        return int(row[0])


def orders(dsn: str) -> dict[int, dict[str, Any]]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT order_id, status, created_at, wms_acknowledged_at FROM shop.orders").fetchall()
    return {r[0]: {"status": r[1], "created_at": r[2], "acknowledged_at": r[3]} for r in rows}


def order_lines(dsn: str) -> dict[int, list[tuple[str, int]]]:
    out: dict[int, list[tuple[str, int]]] = {}
    with connect(dsn) as conn:
        for order_id, sku, qty in conn.execute("SELECT order_id, sku, qty FROM shop.order_lines ORDER BY 1, 2"):
            out.setdefault(order_id, []).append((sku, qty))
    return out


def wms_allocated(wms: Any, skus: list[str] | None = None) -> dict[str, int]:
    return {item["sku"]: item["allocated"] for item in wms.admin.items(skus)}


def wms_post(wms: Any, path: str, body: Any) -> Any:
    response = wms_session().post(f"{wms.url}{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def orders_cli_env(shop: str, store: str) -> dict[str, str]:
    """The environment of `python -m include.stocksync orders ...` for a deployment with two
    databases: stocksync's own in `STOCKSYNC_SHOP_DSN` (the command's `--dsn-env`), the shop as the
    Airflow connection `stocksync_shop` with `stocksync_conn_id` set, so the push reaches the shop
    through its port, never through stocksync's database."""
    return {**os.environ, "STOCKSYNC_SHOP_DSN": store, "PYTHONPATH": os.getcwd(),
            "AIRFLOW_CONN_STOCKSYNC_SHOP": postgres_connection_json(shop), **stocksync_connection_env(store)}


def databases(dsn: str, store: str) -> tuple[str, ShopPort]:
    """stocksync's database and the shop port for a shop at `dsn`: `store` and the shop behind its port."""
    return store, open_shop(dsn)


def full_sync(dsn: str, wms: Any, run_id: str, settings: Settings | None = None, *,
              store: str) -> dict[str, Any]:
    """A nightly sync run through the pipeline's own steps (no Airflow): what the DAG's tasks call.
    `dsn`: the shop's database; `store`: stocksync's own."""
    from include.stocksync.sync import pipeline

    settings = settings or load_settings().model_copy(update={"freeze_mode": "none"})
    session = wms_session()
    own, shop = databases(dsn, store)
    pipeline.freeze_checkout(own, run_id=run_id, dag_id="inventory_nightly_sync", settings=settings, shop=shop)
    try:
        pipeline.extract(own, run_id=run_id, session=session, base_url=wms.url, shop=shop)
        pipeline.validate(own, run_id=run_id, shop=shop)
        plan = pipeline.merge(own, run_id=run_id, shop=shop)
        pipeline.load_stock(own, run_id=run_id, plan_table=plan.plan_table, shop=shop)
    finally:
        pipeline.release_freeze(own, run_id=run_id, dag_id="inventory_nightly_sync", shop=shop)
    return pipeline.get_run(own, run_id)


def nightly_steps(dsn: str, wms: Any, run_id: str, conf: dict[str, Any] | None = None, *,
                  store: str) -> tuple[str, BaseException] | None:
    """One nightly run through the pipeline's own steps in the DAG's order, with the DAG's run spec
    (the config, then `conf`) and freeze mode, and its teardown whatever failed: what
    `dag.test()` runs, without Airflow. Returns the task whose step stopped the run and its error
    (that task would have failed), None when every step passed."""
    from include.stocksync.config.settings import run_options
    from include.stocksync.sync import pipeline

    dag_id = "inventory_nightly_sync"
    session = wms_session()
    own, shop = databases(dsn, store)
    task = "freeze_checkout"
    try:
        pipeline.freeze_checkout(own, run_id=run_id, dag_id=dag_id, settings=load_settings().for_run(conf),
                                 options=run_options(conf, ops=False), shop=shop)
        task = "extract_wms_counts"
        pipeline.extract(own, run_id=run_id, session=session, base_url=wms.url, shop=shop)
        task = "validate_counts"
        pipeline.validate(own, run_id=run_id, shop=shop)
        task = "merge_in_window_orders"
        plan = pipeline.merge(own, run_id=run_id, shop=shop)
        task = "load_stock"
        pipeline.load_stock(own, run_id=run_id, plan_table=plan.plan_table, shop=shop)
    except Exception as exc:  # noqa: BLE001 - recorded on the run by its step, as in a task
        return task, exc
    finally:
        pipeline.release_freeze(own, run_id=run_id, dag_id=dag_id, shop=shop)
    return None


def intraday(dsn: str, wms: Any, run_id: str, settings: Settings | None = None, *,
             store: str) -> dict[str, Any]:
    """One intraday run through its own steps (no Airflow); `dsn` the shop's database, `store` stocksync's."""
    from include.stocksync.sync import intraday as intraday_sync

    own, shop = databases(dsn, store)
    return intraday_sync.run_once(own, settings or load_settings(), run_id=run_id, session=wms_session(),
                                  base_url=wms.url, shop=shop)


def truth(dsn: str, wms: Any, statuses: tuple[str, ...] = ("placed", "paid", "processing")) -> dict[str, int]:
    """What every SKU should be once everything is settled: max(0, WMS available - units of accepted
    orders the WMS has not counted (never acknowledged))."""
    with connect(dsn) as conn:
        uncounted = dict(conn.execute(
            "SELECT l.sku, sum(l.qty) FROM shop.orders o JOIN shop.order_lines l USING (order_id) "
            "WHERE o.wms_acknowledged_at IS NULL AND o.status = ANY (%s) "
            "AND o.created_at >= now() - interval '24 hours' GROUP BY l.sku", (list(statuses),)).fetchall())
    return {item["sku"]: max(0, item["available"] - int(uncounted.get(item["sku"], 0))) for item in wms.admin.items()}


def shop_stock(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        return dict(conn.execute("SELECT sku, qty FROM shop.stock").fetchall())
