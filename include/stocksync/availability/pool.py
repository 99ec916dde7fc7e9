"""A small bounded pool of async PostgreSQL connections (psycopg_pool is not installed).

Why our own and why this shape: every request must end within its budget, so the pool never
waits on its own. A caller bounds acquire + query with one `asyncio.timeout`; a waiter cancelled
by it leaves the queue cleanly, and a connection in use when the budget ran out is discarded
(psycopg cannot tell what state a cancelled query left it in; the server's statement_timeout
ends the query).

Connections are opened by a task of the pool, not by the request that needed one: the request
waits for the next connection (opened or released) within its budget, and a connect that takes
longer than one request's budget (a busy server forking and authenticating, a distant database)
still completes, within `connect_timeout`, and serves the next request. Opened by the request
itself, every connect slower than the budget was cancelled with it and the pool could never
refill. A refused or timed-out connect marks the database down for `retry_after` seconds: until
then requests answer "unknown" at once instead of each trying (and waiting) to connect, so a dead
database costs nothing per request and is retried at a steady pace; when no connection is open
at all, the requests waiting are answered at once too.

Single event loop only (one pool per worker process); no locks needed.
"""

from __future__ import annotations

import asyncio
import logging
import select
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

log = logging.getLogger("stocksync.availability.pool")


def _server_spoke(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether the server sent something to a connection that sat idle in the pool. It does when it
    ends the session (a FATAL message, then it closes: a restart, a failover, pg_terminate_backend,
    idle_session_timeout); handed out, such a connection would fail its request (`db_error`). One
    poll of the socket, no round trip; a connection it wrongly flags only costs a new connect."""
    try:
        fd = conn.pgconn.socket
    except psycopg.OperationalError:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


class DatabaseUnavailable(Exception):
    """No connection could be had: `cause` is `db_down` (marked down recently) or `db_connect`."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


class ConnectionPool:
    def __init__(self, conninfo: str, *, size: int, retry_after: float, connect_timeout: float,
                 connect_kwargs: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._size = size
        self._retry_after = retry_after
        self._connect_timeout = connect_timeout
        self._connect_kwargs = connect_kwargs
        self._connecting: set[asyncio.Task[None]] = set()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._opened = 0  # open or being opened
        self._waiters: deque[asyncio.Future[psycopg.AsyncConnection[Any] | None]] = deque()
        self._down_until = 0.0
        self._closing = False
        self._closers: set[asyncio.Task[None]] = set()
        self.last_error: str | None = None
        self.connects = 0
        self.discards = 0

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one piece of work; discarded if the work raised or was cancelled."""
        conn = await self.acquire()
        try:
            yield conn
        except BaseException:
            self.release(conn, discard=True)
            raise
        self.release(conn)

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if conn.closed or conn.broken:
                    self._opened -= 1
                    continue
                if _server_spoke(conn):  # the server ended the session while it sat idle
                    self._opened -= 1
                    self._discard(conn)
                    continue
                return conn
            if self._opened < self._size:
                self._start_connect()
            waiter: asyncio.Future[psycopg.AsyncConnection[Any] | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None \
                        and waiter.result() is not None:
                    self.release(waiter.result())  # handed over just as we were cancelled: pass it on
                else:
                    try:
                        self._waiters.remove(waiter)
                    except ValueError:
                        pass
                    if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                        self._wake_one()  # we were woken to open a connection: let another waiter do it
                raise
            if handed is not None:
                return handed
            # None: a slot was freed; go round and open a connection

    def _start_connect(self) -> None:
        """Open one connection in a task of the pool (see the module docstring)."""
        if self._closing:
            raise DatabaseUnavailable("db_down", "pool closed")
        if self.down:
            raise DatabaseUnavailable("db_down", self.last_error or "database unavailable")
        self._opened += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True, **self._connect_kwargs)
        except Exception as exc:  # refused, authentication, timed out, a bad DSN: the database is unusable
            self._opened -= 1
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._mark_down("connect timed out" if isinstance(exc, TimeoutError) else f"connect failed: {first_line}")
            if self._opened == 0:  # nothing else will serve the waiting requests: answer them now
                self._fail_waiters(DatabaseUnavailable("db_connect", self.last_error or "connect failed"))
            else:
                self._wake_one()
            return
        except asyncio.CancelledError:  # the pool is closing
            self._opened -= 1
            raise
        self.connects += 1
        self.release(conn)

    def _fail_waiters(self, error: DatabaseUnavailable) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def release(self, conn: psycopg.AsyncConnection[Any], *, discard: bool = False) -> None:
        if (discard or self._closing or conn.closed or conn.broken
                or conn.info.transaction_status != TransactionStatus.IDLE):
            self._opened -= 1
            self._discard(conn)
            self._wake_one()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _mark_down(self, reason: str) -> None:
        if not self.down:
            log.warning("database marked down for %.1f s: %s", self._retry_after, reason)
        self.last_error = reason
        self._down_until = time.monotonic() + self._retry_after

    def _discard(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.discards += 1
        if conn.closed:
            return
        task = asyncio.get_running_loop().create_task(self._close(conn))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    @staticmethod
    async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await asyncio.wait_for(conn.close(), 5)
        except Exception:  # closing a broken connection may fail; it is gone either way
            pass

    async def close(self) -> None:
        self._closing = True
        for task in list(self._connecting):
            task.cancel()
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)
        idle, self._idle = self._idle, []
        for conn in idle:
            self._opened -= 1
            await self._close(conn)
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)
