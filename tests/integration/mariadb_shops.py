"""What the shop tests on MariaDB share: the test server (started by the tests on 127.0.0.1, port
$STOCKSYNC_TEST_MARIADB_PORT), a shop connection URI, and the stand-ins for stocksync's side of
the port (a list sink, a demand query)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from devstack.local_mariadb import LocalMariaDB
from include.stocksync.shop.port import DemandQuery, StockWrite

MARIADB = LocalMariaDB(name=os.environ.get("STOCKSYNC_TEST_MARIADB_NAME", "test"),
                       port=int(os.environ.get("STOCKSYNC_TEST_MARIADB_PORT", "33307")), database="shops_test")


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


def waiting_or_done(rows: Callable[[str], Any], thread: threading.Thread) -> None:
    """Until `thread` has finished or waits on an InnoDB row lock (no timing involved); `rows` runs
    a query on the shop's server and returns its rows."""
    while thread.is_alive():
        if rows("SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'")[0][0]:
            return
        thread.join(0.05)
