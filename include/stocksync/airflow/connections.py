"""Airflow Connections as the libpq DSNs stocksync's code takes (used inside tasks, callbacks and
the plugin's request handlers, never at import time)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings
    from include.stocksync.shop.port import ShopPort


def postgres_dsn(conn_id: str) -> str:
    """The DSN of a Postgres Connection (host, port, login, password, schema = database)."""
    from airflow.sdk import BaseHook
    from psycopg.conninfo import make_conninfo

    conn = BaseHook.get_connection(conn_id)
    return make_conninfo(host=conn.host or "127.0.0.1", port=conn.port or 5432, user=conn.login or None,
                         password=conn.password or None, dbname=conn.schema or "postgres")


def stocksync_dsn(settings: Settings) -> str:
    """stocksync's own database: `stocksync_conn_id`, or when unset the shop's (`shop_conn_id`: the
    single-database layout, where the reference shop and stocksync's schema share one database)."""
    return postgres_dsn(settings.stocksync_conn_id or settings.shop_conn_id)


def mysql_uri(conn_id: str) -> str:
    """`mysql://USER:PASSWORD@HOST:PORT/DATABASE` of a MySQL Connection (host, port, login,
    password, schema = database), each part percent-encoded."""
    from urllib.parse import quote

    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if not conn.schema:
        raise ValueError(f"Airflow connection {conn_id!r}: set its schema to the shop's database name "
                         "(conn type mysql: host, port, login, password, schema)")
    user = quote(conn.login or "", safe="")
    password = quote(conn.password or "", safe="")
    return (f"mysql://{user}:{password}@{conn.host or '127.0.0.1'}:{int(conn.port or 3306)}/"
            f"{quote(conn.schema, safe='')}")


def shop_port(settings: Settings) -> ShopPort:
    """The deployment's shop behind the shop port: `shop_platform`'s adapter over `shop_conn_id`
    (a Postgres connection for the reference shop, a MySQL one for Magento 2 and PrestaShop) with
    the platform's `platform_options`."""
    from include.stocksync.config.platforms import MYSQL_PLATFORMS
    from include.stocksync.shop.registry import open_shop

    platform = settings.shop_platform
    dsn = mysql_uri(settings.shop_conn_id) if platform in MYSQL_PLATFORMS else postgres_dsn(settings.shop_conn_id)
    return open_shop(dsn, platform, **settings.platform_options.adapter_options(platform))


def shop_port_for_alerts(settings: Settings) -> ShopPort | None:
    """`shop_port`, or None when the shop's connection cannot be opened: an alert, and the retry of
    undelivered alerts, never depend on the shop (a failure alert then says checkout's state is
    unknown)."""
    try:
        return shop_port(settings)
    except Exception:
        logging.getLogger(__name__).exception(
            "stocksync: the shop's connection is unusable; alerts go out without checkout's state")
        return None
