"""What the shop tests on MariaDB share: the test server (started by the tests on 127.0.0.1, port
$STOCKSYNC_TEST_MARIADB_PORT), a shop connection URI, and the stand-ins for stocksync's side of
the port (a list sink, a demand query)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import MySQLdb
import pytest

from devstack.local_mariadb import LocalMariaDB
from include.stocksync.shop.port import DemandQuery, ShopUnavailable, StockWrite
from tests.workers import worker_server

# one server per pytest-xdist worker (tests/workers.py)
_NAME, _PORT = worker_server(os.environ.get("STOCKSYNC_TEST_MARIADB_NAME", "test"),
                             int(os.environ.get("STOCKSYNC_TEST_MARIADB_PORT", "33307")))
MARIADB = LocalMariaDB(name=_NAME, port=_PORT, database="shops_test")


@pytest.fixture(scope="session", name="mariadb")
def mariadb_server() -> Iterator[LocalMariaDB]:
    """The test MariaDB server (import `mariadb_server` to use the `mariadb` fixture)."""
    was_running = MARIADB.is_running()
    MARIADB.start(allow_other_port=True)
    yield MARIADB
    if not was_running:
        MARIADB.stop()


def shop_dsn(server: LocalMariaDB, database: str) -> str:
    return f"mysql://stocksync:{quote(server.password, safe='')}@127.0.0.1:{server.port}/{database}"


@contextmanager
def store_transaction(server: LocalMariaDB, database: str) -> Iterator[Any]:
    """One transaction on a store's database, as the platform's own code would open it (UTC):
    committed when the block ends, rolled back when it raises."""
    conn = MySQLdb.connect(**server.connect_args(database))
    conn.autocommit(False)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def store_rows(server: LocalMariaDB, database: str, text: str, params: Any = None) -> list[tuple[Any, ...]]:
    with store_transaction(server, database) as conn, conn.cursor() as cur:
        cur.execute(text, params)
        return list(cur.fetchall())


class ListSink:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def write_row(self, row: Any) -> None:
        self.rows.append(tuple(row))

    def write(self, buffer: bytes | str) -> None:  # pragma: no cover - the adapter writes rows
        raise AssertionError("the MySQL-family adapters stream rows")


def demand_query(watermark: datetime) -> DemandQuery:
    return DemandQuery(include_orders=True, unsent_cutoff_seconds=86400.0, unsent_statuses=(),
                       watermark=watermark, watermark_source="wms", include_carts=False, cart_cutoff_seconds=86400.0)


def sync(shop: Any, snapshot: dict[str, tuple[int, int]], watermark: datetime | None = None) -> list[str]:
    """What stocksync's apply does through the port: the demand read under the shop's lock,
    `new = max(0, available - unsent)`, one sequence-guarded write. `snapshot`: sku -> (available, seq)."""
    with shop.apply_session(lock_timeout_seconds=10) as session:
        sink = ListSink()
        session.stream_demand(demand_query(watermark or datetime.now(UTC)), sink)
        unsent = {sku: qty for sku, qty, _carts in sink.rows}
        return session.write_stock(StockWrite(sku, max(0, available - unsent.get(sku, 0)), seq)
                                   for sku, (available, seq) in snapshot.items())


def order_push_holds_back_an_apply_not_checkout(shop: Any, checkout: Callable[[], bool]) -> None:
    """While a batch of the order push holds its lock, a checkout (`checkout()`, True when the order
    was taken) goes through and an apply gives up after its lock timeout; afterwards it gets in."""
    with shop.order_push_session(lock_timeout_seconds=5):
        assert checkout()
        with pytest.raises(ShopUnavailable, match="did not answer in time"):
            with shop.apply_session(lock_timeout_seconds=1):
                pass
    with shop.apply_session(lock_timeout_seconds=5):
        pass


def live_write_back_waits_for_an_apply(shop: Any, sku: str) -> None:
    """Once an apply has written `sku` (the write locks the rows it writes until the apply commits),
    the live write-back of `sku` gives up after its lock timeout."""
    with shop.apply_session(lock_timeout_seconds=5) as apply:
        [row] = apply.read_stock([sku])
        assert apply.write_stock([StockWrite(sku, row.qty + 1, row.wms_seq + 1)]) == [sku]
        with pytest.raises(ShopUnavailable, match="did not answer in time"):
            with shop.live_session(sku, lock_timeout_seconds=1):
                pass


def waiting_or_done(rows: Callable[[str], Any], thread: threading.Thread) -> None:
    """Until `thread` has finished or waits on an InnoDB row lock (no timing involved); `rows` runs
    a query on the shop's server and returns its rows."""
    while thread.is_alive():
        if rows("SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")[0][0]:
            return
        thread.join(0.05)
