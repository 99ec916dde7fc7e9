"""The reference PostgreSQL shop behind the shop port (include/stocksync/shop/port.py).

Every statement is a file of the shop adapter folder (`shop/<name>`, declared in
include/stocksync/shop/postgres/statements.py), so a PostgreSQL shop with other tables is adapted by editing
SQL, not this module. The shop is its own database (its own connection, `shop_conn_id`): nothing
here touches stocksync's schema, and the bulk reads leave the shop as `COPY ... TO STDOUT` bytes
passed straight into the caller's staging COPY.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from include.stocksync.config.settings import ConfigError, process_settings
from include.stocksync.shop.port import (
    ActiveFreeze,
    DemandQuery,
    DemandRow,
    Freeze,
    InPlaceReads,
    OrderLine,
    OrderRef,
    Sellable,
    ShopContractError,
    ShopUnavailable,
    StagingSink,
    StockRow,
    StockWrite,
)
from include.stocksync.store.db import query

PLATFORM = "postgres"


# The server sends COPY TO one row per message: passed on in blocks of about this size, a sink's
# write is called a few times per catalog instead of once per row (100k rows: ~0.1 s against ~0.8 s).
COPY_BLOCK_BYTES = 1 << 20

# A kept connection idle longer than this is closed rather than reused: a run's calls come seconds
# apart, while a connection idle for minutes may have lost its path through a firewall or NAT that
# dropped the idle TCP flow (its next statement would then wait for TCP to give up, not fail).
KEEP_IDLE_SECONDS = 30.0


def _copy_out(conn: psycopg.Connection, statement: sql.Composable, params: dict[str, Any] | None,
              sink: StagingSink) -> int:
    """`COPY (statement) TO STDOUT` into `sink` as PostgreSQL text-format bytes; returns the rows."""
    copy = sql.SQL("COPY (") + statement + sql.SQL(") TO STDOUT")
    block = bytearray()
    with conn.cursor() as cur, cur.copy(copy, params) as out:
        for data in out:
            block += data
            if len(block) >= COPY_BLOCK_BYTES:
                sink.write(bytes(block))
                block.clear()
        if block:
            sink.write(bytes(block))
        rows = cur.rowcount
    return max(rows, 0)


# libpq's defaults for what a connection string leaves out (host: its socket directory)
_LIBPQ_DEFAULTS = {"host": "", "port": "5432"}


def _endpoint(params: dict[str, Any]) -> tuple[str, ...]:
    """Where and as whom a connection reads: host, port, database, role. Written differently (an
    address for a name) it simply does not match, which only costs the copy."""
    user = str(params.get("user") or "")
    return (str(params.get("host") or params.get("hostaddr") or _LIBPQ_DEFAULTS["host"]),
            str(params.get("port") or _LIBPQ_DEFAULTS["port"]),
            str(params.get("dbname") or user), user)


def sku_demand_statement() -> sql.Composed:
    """`shop/select_in_window_demand` for one SKU (`%(sku)s`): unsent and cart units, zeros when none.
    The filter on the grouping column is pushed into the query, so only that SKU's lines are read."""
    return (sql.SQL("SELECT coalesce(sum(d.unsent_qty), 0), coalesce(sum(d.cart_qty), 0) FROM (")
            + query("shop/select_in_window_demand") + sql.SQL(") d WHERE d.sku = %(sku)s"))


def _lock_timeout(conn: psycopg.Connection, seconds: float) -> None:
    if not seconds > 0:
        raise ValueError(f"lock_timeout_seconds must be > 0; got {seconds}")
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{int(seconds * 1000)}ms")))


@contextmanager
def _transient(what: str) -> Iterator[None]:
    """Connection loss and lock timeouts are transient (`ShopUnavailable`, keeping the first cause);
    a statement that breaks the contract (missing table or column) is permanent."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as exc:
        raise ShopUnavailable(f"{what}: the shop's stock lock was not granted in time ({exc}); "
                              "raise lock_timeout_seconds or move the run off the busy hour") from exc
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn,
            psycopg.errors.UndefinedFunction) as exc:
        raise ShopContractError(f"{what}: the shop adapter statement does not fit the shop's tables ({exc}); "
                                "fix the shop adapter folder (docs/shop-adapter.md)") from exc
    except psycopg.OperationalError as exc:
        raise ShopUnavailable(f"{what}: the shop database is unreachable ({exc})") from exc


class _Apply:
    def __init__(self, conn: psycopg.Connection, rows_locked_at: float) -> None:
        self.conn = conn
        self.rows_locked_at: float | None = rows_locked_at  # the shop's stock table, locked at the start

    def stream_demand(self, query_: DemandQuery, sink: StagingSink) -> int:
        return _copy_out(self.conn, query("shop/select_in_window_demand"), query_.as_params(), sink)

    def read_stock(self, skus: Sequence[str]) -> list[StockRow]:
        rows = self.conn.execute(sql.SQL("SELECT s.sku, s.qty, s.wms_seq FROM (") + query("shop/select_current_stock")
                                 + sql.SQL(") s WHERE s.sku = ANY (%(skus)s)"), {"skus": list(skus)}).fetchall()
        return [StockRow(str(sku), int(qty), int(seq)) for sku, qty, seq in rows]

    def write_stock(self, writes: Iterable[StockWrite]) -> list[str]:
        table = sql.Identifier("shop_port_writes")
        self.conn.execute(sql.SQL("CREATE TEMP TABLE {} (sku text PRIMARY KEY, new_qty integer NOT NULL, "
                                  "wms_seq bigint NOT NULL) ON COMMIT DROP").format(table))
        with self.conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} (sku, new_qty, wms_seq) FROM STDIN").format(table)) as copy:
                for w in writes:
                    copy.write_row((w.sku, w.new_qty, w.wms_seq))
            written = cur.execute(query("shop/update_stock", writes=table)).fetchall()
        return [str(row[0]) for row in written]


class _InPlaceApply(_Apply):
    """The apply on stocksync's own connection to this very shop (`apply_in_place`): the demand
    and the write run where the tables stand, no row passes through Python."""

    def demand_into(self, table: sql.Identifier, query_: DemandQuery) -> int:
        return self.conn.execute(sql.SQL("INSERT INTO {} (sku, unsent_qty, cart_qty) ").format(table)
                                 + query("shop/select_in_window_demand"), query_.as_params()).rowcount

    def write_stock_from(self, writes: sql.Composable) -> list[str]:
        written = self.conn.execute(query("shop/update_stock", writes=writes)).fetchall()
        return [str(row[0]) for row in written]


class _OrderPush:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def order_lines(self, order_ids: Sequence[int]) -> list[OrderLine]:
        rows = self.conn.execute(query("shop/select_order_lines"), {"order_ids": list(order_ids)}).fetchall()
        return [OrderLine(int(o), str(s), int(q)) for o, s, q in rows]

    def acknowledge(self, order_ids: Sequence[int], acknowledged_at: Sequence[datetime]) -> list[int]:
        if len(order_ids) != len(acknowledged_at):
            raise ValueError("acknowledge needs one receipt time per order")
        rows = self.conn.execute(query("shop/update_order_acknowledged"),
                                 {"order_ids": list(order_ids), "acknowledged_at": list(acknowledged_at)}).fetchall()
        return [int(row[0]) for row in rows]


class _Live:
    def __init__(self, conn: psycopg.Connection, sku: str, current: StockRow | None) -> None:
        self.conn = conn
        self.sku = sku
        self._current = current

    @property
    def current(self) -> StockRow | None:
        return self._current

    def demand(self, query_: DemandQuery) -> DemandRow:
        row = self.conn.execute(sku_demand_statement(), {**query_.as_params(), "sku": self.sku}).fetchone()
        assert row is not None
        return DemandRow(self.sku, int(row[0]), int(row[1]))

    def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        row = self.conn.execute(query("shop/update_stock_live"),
                                {"sku": self.sku, "new_qty": new_qty, "wms_seq": wms_seq}).fetchone()
        return StockRow(self.sku, int(row[0]), int(row[1])) if row else None


SHIPPED_LOCK_TIMEOUT_SECONDS = 60.0  # include/config/stocksync.yaml's lock_timeout_seconds


def _deployment_lock_timeout() -> float:
    """The deployment's lock_timeout_seconds; the shipped value in a process whose stocksync config
    cannot be read (the availability service runs from its own settings and may not carry one)."""
    try:
        return process_settings().lock_timeout_seconds
    except ConfigError:
        return SHIPPED_LOCK_TIMEOUT_SECONDS


class PostgresShop:
    """The shop port over a PostgreSQL shop at `dsn`. Each call or session is one shop transaction on
    the adapter's connection: opened on first use, checked with a round trip when taken again, kept
    for the next call (up to `KEEP_IDLE_SECONDS` idle). A connection costs the client a SCRAM
    exchange and the server a new backend (about 7 ms together on the two-core machine), and a run
    asks the shop several times, some of them inside the freeze window. A call that finds the
    connection taken (another thread's transaction) opens one of its own for that call; a connection
    that failed or was left inside a transaction is closed, never reused. The statements may not
    rely on session state (a plain SET, a session advisory lock): only `SET LOCAL` and transaction
    locks, which end with the call."""

    platform = PLATFORM

    def __init__(self, dsn: str, *, connect_timeout: float = 10, lock_timeout_seconds: float | None = None) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        # every call's wait for a lock (a read of the stock behind another session's ACCESS EXCLUSIVE:
        # a maintenance ALTER, TRUNCATE, VACUUM FULL) ends within the deployment's lock_timeout_seconds:
        # a run reading the shop under its checkout freeze never waits longer; sessions that lock
        # on purpose (the apply, the live write-back) set their own
        self.lock_timeout_seconds = (lock_timeout_seconds if lock_timeout_seconds is not None
                                     else _deployment_lock_timeout())
        self._kept: psycopg.Connection | None = None
        self._kept_by = os.getpid()
        self._kept_since = 0.0
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection:
        # autocommit: every call's transaction is the explicit `conn.transaction()` block of `_transaction`
        return psycopg.connect(self.dsn, application_name="stocksync", autocommit=True,
                               connect_timeout=max(1, int(self.connect_timeout)))

    def _take(self) -> psycopg.Connection:
        """The kept connection if it is free and still answers, else a new one."""
        with self._lock:
            conn, self._kept = self._kept, None
            if self._kept_by != os.getpid():
                # inherited through a fork: the parent's session, never ours to use or close
                conn, self._kept_by = None, os.getpid()
        if conn is not None and time.monotonic() - self._kept_since > KEEP_IDLE_SECONDS:
            conn.close()
            conn = None
        if conn is not None:
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                conn.close()  # the server ended the idle session (a restart, pg_terminate_backend)
        return self._connect()

    def _give_back(self, conn: psycopg.Connection) -> None:
        """Keep `conn` for the next call when it ended its transaction cleanly and none is kept."""
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            with self._lock:
                if self._kept is None and self._kept_by == os.getpid():
                    self._kept, self._kept_since = conn, time.monotonic()
                    return
        conn.close()

    def close(self) -> None:
        """Close the kept connection (the next call opens a new one)."""
        with self._lock:
            conn, self._kept = self._kept, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Connection]:
        """One shop transaction: committed when the block ends normally, rolled back when it raises
        (and its connection closed: whatever failed, the next call starts on a new one)."""
        with _transient(what):
            conn = self._take()
            try:
                with conn.transaction():
                    _lock_timeout(conn, self.lock_timeout_seconds)
                    yield conn
            except BaseException:
                conn.close()
                raise
            self._give_back(conn)

    # -- bulk reads --------------------------------------------------------------------------------
    def stream_catalog(self, sink: StagingSink) -> int:
        with self._transaction("reading the shop's catalog") as conn:
            return _copy_out(conn, query("shop/select_catalog_skus"), None, sink)

    def stream_stock(self, sink: StagingSink) -> int:
        with self._transaction("reading the shop's stock") as conn:
            return _copy_out(conn, query("shop/select_current_stock"), None, sink)

    def stream_demand(self, query_: DemandQuery, sink: StagingSink) -> int:
        with self._transaction("reading the shop's in-window demand") as conn:
            return _copy_out(conn, query("shop/select_in_window_demand"), query_.as_params(), sink)

    def in_place_reads(self, conn: psycopg.Connection) -> InPlaceReads | None:
        """The catalog and stock statements when `conn` reads this very shop: same host, port,
        database and role as the shop's connection string (`InPlaceShop`). Anything else (another
        database, cluster or role, or the same server written another way, a name for an address)
        answers None and the run copies them through `stream_catalog` / `stream_stock`."""
        info = conn.info
        here = _endpoint({"host": info.host, "port": info.port, "dbname": info.dbname, "user": info.user})
        if _endpoint(conninfo_to_dict(self.dsn)) != here:
            return None
        return InPlaceReads(query("shop/select_catalog_skus"), query("shop/select_current_stock"))

    # -- the checkout freeze -----------------------------------------------------------------------
    def set_freeze(self, *, set_by: str, reason: str, message: str, placeholder: str,
                   ttl_seconds: float) -> Freeze:
        with self._transaction("closing checkout") as conn:
            row = conn.execute(query("shop/insert_checkout_freeze"), {
                "reason": reason, "message": message, "placeholder": placeholder, "set_by": set_by,
                "ttl_seconds": ttl_seconds}).fetchone()
        if row is None:
            raise ShopContractError("shop/insert_checkout_freeze returned no row: it must return the freeze")
        return Freeze(int(row[0]), row[1], row[2], str(row[3]))

    def release_freezes(self, *, set_by: str) -> int:
        with self._transaction("reopening checkout") as conn:
            return len(conn.execute(query("shop/update_checkout_freeze"), {"set_by": set_by}).fetchall())

    def freeze_seconds(self, *, set_by: str) -> float:
        with self._transaction("reading the freeze window") as conn:
            row = conn.execute(query("shop/select_checkout_freeze"), {"set_by": set_by}).fetchone()
        return float(row[0]) if row else 0.0

    def active_freezes(self, *, set_by: str | None = None) -> list[ActiveFreeze]:
        with self._transaction("reading the active freezes") as conn:
            rows = conn.execute(query("shop/select_active_freeze"), {"set_by": set_by}).fetchall()
        return [ActiveFreeze(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4], r[5]) for r in rows]

    # -- the apply ---------------------------------------------------------------------------------
    @contextmanager
    def apply_session(self, *, lock_timeout_seconds: float) -> Iterator[_Apply]:
        with self._transaction("applying the plan to the shop") as conn:
            _lock_timeout(conn, lock_timeout_seconds)
            conn.execute(query("shop/lock_stock"))
            yield _Apply(conn, time.perf_counter())

    @contextmanager
    def apply_in_place(self, conn: psycopg.Connection, *, lock_timeout_seconds: float) -> Iterator[_InPlaceApply]:
        if self.in_place_reads(conn) is None:
            raise ShopContractError("apply_in_place: the connection given is not to this shop's database and role")
        with _transient("applying the plan to the shop"):
            _lock_timeout(conn, lock_timeout_seconds)
            conn.execute(query("shop/lock_stock"))
            yield _InPlaceApply(conn, time.perf_counter())
            conn.execute("SET LOCAL lock_timeout TO DEFAULT")  # the lock is held until `conn` commits

    # -- the order push ----------------------------------------------------------------------------
    def unacknowledged_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        with self._transaction("reading the orders to send") as conn:
            rows = conn.execute(query("shop/select_unacknowledged_orders"), {"statuses": list(statuses)}).fetchall()
        return [OrderRef(int(o), c) for o, c in rows]

    def cancelled_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        with self._transaction("reading the cancelled orders") as conn:
            rows = conn.execute(query("shop/select_cancelled_orders"),
                                {"cancelled_statuses": list(statuses)}).fetchall()
        return [OrderRef(int(o), c) for o, c in rows]

    @contextmanager
    def order_push_session(self, *, lock_timeout_seconds: float) -> Iterator[_OrderPush]:
        with self._transaction("sending a batch of orders") as conn:
            _lock_timeout(conn, lock_timeout_seconds)
            conn.execute(query("shop/lock_stock_for_order_push"))
            yield _OrderPush(conn)

    # -- live lookups ------------------------------------------------------------------------------
    def sellable(self, sku: str) -> Sellable | None:
        with self._transaction("reading one product") as conn:
            row = conn.execute(sql.SQL("SELECT s.sku, s.enabled, s.qty, s.wms_seq FROM (")
                               + query("shop/select_sellable_stock") + sql.SQL(") s WHERE s.sku = %(sku)s"),
                               {"sku": sku}).fetchone()
        if row is None:
            return None
        return Sellable(str(row[0]), bool(row[1]), None if row[2] is None else int(row[2]),
                        None if row[3] is None else int(row[3]))

    @contextmanager
    def live_session(self, sku: str, *, lock_timeout_seconds: float) -> Iterator[_Live]:
        with self._transaction("writing one product back") as conn:
            _lock_timeout(conn, lock_timeout_seconds)
            row = conn.execute(query("shop/lock_stock_row"), {"sku": sku}).fetchone()
            yield _Live(conn, sku, StockRow(sku, int(row[0]), int(row[1])) if row else None)
