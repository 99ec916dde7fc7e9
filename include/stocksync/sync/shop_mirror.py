"""What the plan needs from the shop, copied into stocksync's own database through the shop port.

stocksync's SQL never joins a shop table: the shop may be another database, another cluster or
another engine (include/stocksync/shop/port.py). A run copies the shop's catalog once (its first
step that needs it) and the shop's stock before the plan and again before the apply, into
`stocksync.shop_catalog_<run key>` and `stocksync.shop_stock_<run key>` (UNLOGGED, SKU-keyed,
dropped with the run's staging), and the in-window demand into transaction-local tables. The
composables below stand where the shop statements used to be embedded
(`{catalog}`, `{current_stock}`, `{enabled_skus}` of the stocksync SQL).

When the shop is stocksync's own database, read with stocksync's own role (the single-database
layout; the adapter says so: `InPlaceShop` in shop/port.py), the two copies are views over the
adapter's statements instead: nothing is copied (1M SKUs: ~1.5 s per copy), every statement reads
the shop as it is then, and joins use the shop's own SKU index. The views exist for the run only
(its teardown drops them: a view on the shop's tables would hold back the shop's own DDL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import psycopg
from psycopg import sql

from include.stocksync.runs.uow import transaction
from include.stocksync.shop.port import ShopPort, StagingSink, StockRow, in_place_reads
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


VIEW, TABLE = "v", "r"  # pg_class.relkind


def relation_kind(conn: psycopg.Connection, table: sql.Identifier) -> str | None:
    """VIEW (the shop read in place), TABLE (a copy) or None (not there)."""
    row = conn.execute(query("stocksync/select_relation_kind"), {"name": table.as_string(conn)}).fetchone()
    return str(row[0]) if row else None


def _drop(conn: psycopg.Connection, table: sql.Identifier, kind: str | None) -> None:
    if kind == VIEW:
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(table))
    elif kind is not None:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))


def _view(conn: psycopg.Connection, table: sql.Identifier, columns: str, source: sql.Composable) -> None:
    """`table` as a view over the shop statement `source` (a copy of an earlier attempt is dropped)."""
    kind = relation_kind(conn, table)
    if kind != VIEW:
        _drop(conn, table, kind)
        conn.execute(query("stocksync/create_shop_view", view=table, columns=sql.SQL(columns), source=source))


def has_catalog(conn: psycopg.Connection, mirror: ShopMirror) -> bool:
    return relation_kind(conn, mirror.catalog_table) is not None


def mirror_catalog(conn: psycopg.Connection, shop: ShopPort, run_id: str) -> ShopMirror:
    """The run's copy of the shop's catalog, taken once per run (or its in-place view). Copied and
    committed on a connection of its own (a copy, safe to keep whatever the step does), so the
    validation's side-by-side passes, which read on connections of their own, see it."""
    mirror = ShopMirror.of_run(run_id)
    reads = in_place_reads(shop, conn)
    kind = relation_kind(conn, mirror.catalog_table)
    if reads is not None:
        if kind != VIEW:
            with transaction(same_database(conn)) as own:
                _view(own, mirror.catalog_table, "sku, enabled", reads.catalog)
        return replace(mirror, in_place=True)
    if kind != TABLE:  # none yet, or a view of a layout the shop has left since
        with transaction(same_database(conn)) as own:
            _drop(own, mirror.catalog_table, kind)
            own.execute(query("stocksync/create_shop_catalog", catalog=mirror.catalog_table))
            _fill(own, mirror.catalog_table, "sku, enabled", shop.stream_catalog)
    return mirror


def mirror_stock(conn: psycopg.Connection, shop: ShopPort, run_id: str) -> ShopMirror:
    """The run's copy of the shop's catalog (kept) and of its stock as it is now (refreshed), or
    the views that read both in place (`mirror.in_place`)."""
    mirror = mirror_catalog(conn, shop, run_id)
    reads = in_place_reads(shop, conn) if mirror.in_place else None
    if reads is not None:
        _view(conn, mirror.stock_table, "sku, qty, wms_seq", reads.current_stock)
        return mirror
    kind = relation_kind(conn, mirror.stock_table)
    if kind != TABLE:
        _drop(conn, mirror.stock_table, kind)
    conn.execute(query("stocksync/create_shop_stock", stock=mirror.stock_table))
    _fill(conn, mirror.stock_table, "sku, qty, wms_seq", shop.stream_stock)
    return mirror


def drop_copies(conn: psycopg.Connection, run_id: str, *, views_only: bool = False) -> None:
    """Drop the run's copies of the shop's catalog and stock (tables or views; only the views when
    `views_only`: the teardown, so no view on the shop's tables outlives its run)."""
    mirror = ShopMirror.of_run(run_id)
    for table in (mirror.catalog_table, mirror.stock_table):
        kind = relation_kind(conn, table)
        if kind == VIEW or not views_only:
            _drop(conn, table, kind)


def replace_stock_rows(conn: psycopg.Connection, mirror: ShopMirror, skus: list[str], rows: list[StockRow]) -> None:
    """`skus`' stock as read under the apply's lock replaces the copy taken before it. Read in
    place, there is nothing to replace: the view reads the stock as the lock holds it."""
    if mirror.in_place:
        return
    conn.execute(query("stocksync/delete_shop_stock_rows", stock=mirror.stock_table), {"skus": skus})
    conn.execute(query("stocksync/insert_shop_stock_rows", stock=mirror.stock_table),
                 {"skus": [r.sku for r in rows], "qtys": [r.qty for r in rows], "seqs": [r.wms_seq for r in rows]})
