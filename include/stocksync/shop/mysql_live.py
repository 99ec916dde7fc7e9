"""The MySQL-family shops' live lookups (magento2, prestashop), for the availability service (asyncio).

The same part of the shop port as the reference shop's `shop/postgres/live.py` (the product and
the checkout freeze as checkout sees them, one SKU's live write-back under its row lock), with the
same awaitable interface, over the platform adapter's own synchronous methods (`ShopPort.sellable`,
`active_freezes`, `live_session`): the platform's statements and its stock semantics stay in one
place (a Magento write-back adds back the reservations of orders the WMS counted and keeps the
legacy tables or the stock index in step; a PrestaShop one writes `quantity` and the product total).

mysqlclient blocks, so each call runs on a worker thread: lookups on a pool of `threads` threads
(a bound on the shop connections the service holds at once, like the reference shop's pool), and
each write-back on a thread of its own, which enters, uses and leaves the adapter's transaction in
order (a connection is never used by two threads; a request cancelled by its budget leaves its
transaction to be rolled back by that thread, after the statement in flight). Connections are
opened per call, with `connect_timeout`, `read_timeout` and `write_timeout` of `io_timeout_seconds`
so a server that stops answering frees its thread. Every failure surfaces as `LiveShopFailure`
with the service's answer cause (`db_connect`, `db_timeout`, `db_error`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, suppress
from typing import TypeVar

import MySQLdb

from include.stocksync.shop.mysql_family import MySQLShop
from include.stocksync.shop.port import (
    DemandQuery,
    DemandRow,
    LiveSession,
    ShopContractError,
    ShopUnavailable,
    StockRow,
)
from include.stocksync.shop.postgres.live import ShopItem

T = TypeVar("T")
# MySQL/MariaDB client errors: the server could not be reached (refused, unknown host)
_CONNECT_CODES = frozenset({2002, 2003, 2005})
# what a call through the adapter may raise besides a bug: the driver's errors, the adapter's
_FAILURES = (MySQLdb.Error, ShopUnavailable, ShopContractError)


class LiveShopFailure(Exception):
    """A live lookup or write-back failed; `cause` is the service's answer cause."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


def failure_of(exc: BaseException) -> LiveShopFailure:
    """The answer cause of a failed call: the server unreachable (`db_connect`), a lock wait or a
    dropped connection (`db_timeout`, the adapter's `ShopUnavailable`), anything else `db_error`."""
    root = exc.__cause__ if isinstance(exc.__cause__, MySQLdb.Error) else exc
    code = root.args[0] if isinstance(root, MySQLdb.Error) and root.args and isinstance(root.args[0], int) else None
    if code in _CONNECT_CODES:
        return LiveShopFailure("db_connect", f"the shop database cannot be reached ({code})")
    if isinstance(exc, ShopUnavailable):
        return LiveShopFailure("db_timeout", str(exc))
    return LiveShopFailure("db_error", type(root).__name__)


class ThreadedLiveSession:
    """One SKU's write-back (`port.LiveSession`) on its own thread: `await`able `demand` and `write`."""

    def __init__(self, session: LiveSession, thread: ThreadPoolExecutor) -> None:
        self._session = session
        self._thread = thread
        self.current: StockRow | None = session.current

    async def _run(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except _FAILURES as exc:
            raise failure_of(exc) from exc

    async def demand(self, demand: DemandQuery) -> DemandRow:
        return await self._run(lambda: self._session.demand(demand))

    async def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        written = await self._run(lambda: self._session.write(new_qty, wms_seq))
        self.current = written or self.current
        return written


class MySQLLiveShop:
    """A MySQL-family adapter's live lookups, awaitable (see the module docstring)."""

    def __init__(self, shop: MySQLShop, *, threads: int, lock_timeout_seconds: float,
                 io_timeout_seconds: float) -> None:
        self.shop = shop
        self.platform = shop.platform
        self.lock_timeout_seconds = lock_timeout_seconds
        io_timeout = max(1, math.ceil(io_timeout_seconds))  # mysqlclient takes whole seconds
        shop.connect_args = {**shop.connect_args, "connect_timeout": io_timeout, "read_timeout": io_timeout,
                             "write_timeout": io_timeout}
        self._lookups = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"{shop.platform}-live")

    async def _lookup(self, call: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._lookups, call)
        except _FAILURES as exc:
            raise failure_of(exc) from exc

    def _item(self, sku: str) -> ShopItem:
        sellable = self.shop.sellable(sku)
        active = self.shop.active_freezes() if sellable is not None else []
        return ShopItem(sellable, active[0].shopper_message if active else None)

    async def item(self, sku: str) -> ShopItem:
        """The product and, while checkout is frozen, the oldest active freeze's shopper message
        (the freeze is read only for a product in the catalog: an unknown SKU is unknown anyway)."""
        return await self._lookup(lambda: self._item(sku))

    @asynccontextmanager
    async def live_session(self, sku: str) -> AsyncIterator[ThreadedLiveSession]:
        """The adapter's `live_session` of `sku` on a thread of its own: committed when the block
        ends normally, rolled back when it raises (or is cancelled)."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.platform}-write-back")
        loop = asyncio.get_running_loop()
        manager: AbstractContextManager[LiveSession] = self.shop.live_session(
            sku, lock_timeout_seconds=self.lock_timeout_seconds)
        try:
            entering = thread.submit(manager.__enter__)
            try:
                session = await asyncio.wrap_future(entering)
            except BaseException as exc:
                # cancelled while the thread opens the transaction (its budget ran out waiting for
                # the row lock): queued after it, so a transaction it did open is rolled back
                thread.submit(_abandon, manager, entering)
                if isinstance(exc, _FAILURES):
                    raise failure_of(exc) from exc
                raise
            try:
                yield ThreadedLiveSession(session, thread)
            except BaseException as exc:
                # queued after any statement still running on the thread: rolls back there
                leaving = loop.run_in_executor(thread, manager.__exit__, type(exc), exc, exc.__traceback__)
                with suppress(Exception):  # a failed rollback must not hide why the block failed
                    await asyncio.shield(leaving)
                raise
            try:
                await asyncio.shield(loop.run_in_executor(thread, manager.__exit__, None, None, None))
            except _FAILURES as exc:
                raise failure_of(exc) from exc
        finally:
            thread.shutdown(wait=False)

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)


def _abandon(manager: AbstractContextManager[LiveSession], entering: Future[LiveSession]) -> None:
    """Roll back the transaction `entering` opened, if it opened one (nobody will use it)."""
    if entering.cancelled() or entering.exception() is not None:
        return
    with suppress(Exception):
        manager.__exit__(RuntimeError, RuntimeError("the write-back was abandoned"), None)
