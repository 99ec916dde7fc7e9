"""The reference PostgreSQL shop's live lookups, for the availability service (asyncio).

The availability service answers the storefront in real time on pooled asynchronous connections
with a hard per-request budget, so it cannot use the synchronous `PostgresShop` (one short
connection per call). This is the same part of the shop port (`ShopPort.sellable`,
`ShopPort.live_session`, the checkout state of the freezes) over connections the service lends:
`connection()` is an async context manager that yields a psycopg `AsyncConnection` to the *shop's*
database and discards it when the block raises. The statements are the shop adapter folder's
(`shop/select_sellable_stock`, `shop/select_active_freeze`, `shop/lock_stock_row`,
`shop/select_in_window_demand`, `shop/update_stock_live`), so a PostgreSQL shop with other tables
is adapted by editing SQL. Nothing here touches stocksync's schema.

Errors are psycopg's own: the service maps them to its answer causes (`db_timeout`, `db_error`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from include.stocksync.shop.freeze import CheckoutState, checkout_state
from include.stocksync.shop.port import DemandQuery, DemandRow, Sellable, StockRow
from include.stocksync.shop.postgres.adapter import sku_demand_statement
from include.stocksync.store.db import query

Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


@dataclass(frozen=True)
class ShopItem:
    """One SKU as checkout sees it now: the product (None: not in the catalog) and, while checkout
    is frozen, the oldest active freeze's shopper message (checkout refuses every order then)."""

    sellable: Sellable | None
    freeze_message: str | None


class AsyncLiveSession:
    """One SKU's live write-back inside the shop's transaction, its stock row locked (see
    `port.LiveSession`)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], statements: PostgresLiveShop, sku: str,
                 current: StockRow | None) -> None:
        self._conn = conn
        self._statements = statements
        self.sku = sku
        self.current = current

    async def demand(self, demand: DemandQuery) -> DemandRow:
        cursor = await self._conn.execute(self._statements.q_demand, {**demand.as_params(), "sku": self.sku})
        row = await cursor.fetchone()
        assert row is not None  # an aggregate: always one row
        return DemandRow(self.sku, int(row[0]), int(row[1]))

    async def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        cursor = await self._conn.execute(self._statements.q_update,
                                          {"sku": self.sku, "new_qty": new_qty, "wms_seq": wms_seq})
        row = await cursor.fetchone()
        return StockRow(self.sku, int(row[0]), int(row[1])) if row else None


class PostgresLiveShop:
    """The reference shop's live lookups over the connections `connection()` lends (statements
    rendered once, when the worker starts)."""

    platform = "postgres"

    def __init__(self, connection: Connect) -> None:
        self.connection = connection
        self.q_item = (sql.SQL("SELECT s.sku, s.enabled, s.qty, s.wms_seq, (SELECT f.shopper_message FROM (")
                       + query("shop/select_active_freeze") + sql.SQL(") f LIMIT 1) FROM (SELECT 1) one "
                       "LEFT JOIN (") + query("shop/select_sellable_stock")
                       + sql.SQL(") s ON s.sku = %(sku)s")).as_string(None)
        self.q_lock = query("shop/lock_stock_row").as_string(None)
        self.q_demand = sku_demand_statement().as_string(None)
        self.q_update = query("shop/update_stock_live").as_string(None)

    async def item(self, sku: str) -> ShopItem:
        """The product and the checkout freeze, in one round trip. Reads only."""
        async with self.connection() as conn:
            cursor = await conn.execute(self.q_item, {"sku": sku, "set_by": None})
            row = await cursor.fetchone()
        assert row is not None  # one row whatever the SKU (the LEFT JOIN from one row)
        found, enabled, qty, seq, freeze_message = row
        sellable = None if found is None else Sellable(
            str(found), bool(enabled), None if qty is None else int(qty), None if seq is None else int(seq))
        return ShopItem(sellable, freeze_message)

    async def checkout_state(self) -> CheckoutState:
        """Whether any freeze closes checkout now (`shop.freeze.checkout_state`). Reads only."""
        async with self.connection() as conn:
            return await checkout_state(conn)

    @asynccontextmanager
    async def live_session(self, sku: str) -> AsyncIterator[AsyncLiveSession]:
        """The shop's transaction for one SKU's write-back, the stock row locked first (the lock
        timeout is the connection's). Commits when the block ends normally, rolls back when it
        raises."""
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(self.q_lock, {"sku": sku})
            row = await cursor.fetchone()
            current = StockRow(sku, int(row[0]), int(row[1])) if row else None
            yield AsyncLiveSession(conn, self, sku, current)
