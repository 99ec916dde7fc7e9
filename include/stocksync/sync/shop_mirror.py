"""What the plan needs from the shop, copied into stocksync's own database through the shop port.

stocksync's SQL never joins a shop table: the shop may be another database, another cluster or
another engine (include/stocksync/shop/port.py). A run copies the shop's catalog once (its first
step that needs it) and the shop's stock before the plan and again before the apply, into
`stocksync.shop_catalog_<run key>` and `stocksync.shop_stock_<run key>` (UNLOGGED, SKU-keyed,
dropped with the run's staging), and the in-window demand into transaction-local tables. The
composables below stand where the shop statements used to be embedded
(`{catalog}`, `{current_stock}`, `{enabled_skus}` of the stocksync SQL).
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from include.stocksync.runs.uow import transaction
from include.stocksync.shop.port import ShopPort, StagingSink, StockRow
from include.stocksync.shop.registry import same_database
from include.stocksync.store.db import query
from include.stocksync.store.mirror import ShopMirror


def _fill(conn: psycopg.Connection, table: sql.Identifier, columns: str,
          stream: Callable[[StagingSink], int]) -> int:
    conn.execute(sql.SQL("TRUNCATE {}").format(table))
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(columns))) as copy:
        stream(copy)
    conn.execute(sql.SQL("ANALYZE {}").format(table))
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def has_catalog(conn: psycopg.Connection, mirror: ShopMirror) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                       (mirror.catalog_table.as_string(conn),)).fetchone()
    return bool(row and row[0])


def mirror_catalog(conn: psycopg.Connection, shop: ShopPort, run_id: str) -> ShopMirror:
    """The run's copy of the shop's catalog, taken once per run. Copied and committed on a
    connection of its own (a copy, safe to keep whatever the step does), so the validation's
    side-by-side passes, which read on connections of their own, see it."""
    mirror = ShopMirror.of_run(run_id)
    if not has_catalog(conn, mirror):
        with transaction(same_database(conn)) as own:
            own.execute(query("stocksync/create_shop_catalog", catalog=mirror.catalog_table))
            _fill(own, mirror.catalog_table, "sku, enabled", shop.stream_catalog)
    return mirror


def mirror_stock(conn: psycopg.Connection, shop: ShopPort, run_id: str) -> ShopMirror:
    """The run's copy of the shop's catalog (kept) and of its stock as it is now (refreshed)."""
    mirror = mirror_catalog(conn, shop, run_id)
    conn.execute(query("stocksync/create_shop_stock", stock=mirror.stock_table))
    _fill(conn, mirror.stock_table, "sku, qty, wms_seq", shop.stream_stock)
    return mirror


def replace_stock_rows(conn: psycopg.Connection, mirror: ShopMirror, skus: list[str], rows: list[StockRow]) -> None:
    """`skus`' stock as read under the apply's lock replaces the copy taken before it."""
    conn.execute(query("stocksync/delete_shop_stock_rows", stock=mirror.stock_table), {"skus": skus})
    conn.execute(query("stocksync/insert_shop_stock_rows", stock=mirror.stock_table),
                 {"skus": [r.sku for r in rows], "qtys": [r.qty for r in rows], "seqs": [r.wms_seq for r in rows]})
