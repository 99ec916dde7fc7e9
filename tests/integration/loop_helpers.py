"""Helpers shared by the order-push, intraday and trading-day tests (issue 13): settings with a
`loop` section of the test's choosing, a WMS client with the bearer token, shop orders through the
shop's real checkout, and the WMS's view of them."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import requests

from include.stocksync.db import connect
from include.stocksync.order_push import WmsOrders
from include.stocksync.settings import LoopSettings, Settings, load_settings
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


def shop_dsn_env(dsn: str) -> dict[str, str]:
    return {**os.environ, "STOCKSYNC_SHOP_DSN": dsn, "PYTHONPATH": os.getcwd()}
