"""What the shop adapters on MySQL/MariaDB share (magento2, prestashop): their statements (files under
include/sql/<platform>/, the store's table prefix put in for `{p}`, validated: letters, digits,
`_`; values always bound, `%(name)s`), connections (mysqlclient, READ COMMITTED, UTC), error
classes, and stocksync's versioned side-table migrations (include/sql/<platform>/migrations)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import MySQLdb

from include.stocksync.shop.port import (
    ActiveFreeze,
    Freeze,
    OrderRef,
    ShopContractError,
    ShopUnavailable,
    StagingSink,
)

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_STOCK_INDEX = "inventory_stock_{stock_id}"
# rows per multi-row INSERT of the plan (mysqlclient's executemany sends one statement per batch)
PLAN_BATCH = 5000


def checked_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"table prefix {prefix!r}: use at most 32 letters, digits or '_' (the store's "
                         "db table prefix from its app/etc/env.php or config)")
    return prefix


@cache
def _text(platform: str, name: str) -> str:
    return (SQL_ROOT / platform / f"{name}.sql").read_text()


def statement(platform: str, name: str, prefix: str, **identifiers: str) -> str:
    """The statement `name` with `{p}` and the given identifier placeholders filled in."""
    text = _text(platform, name).replace("{p}", checked_prefix(prefix))
    for key, value in identifiers.items():
        text = text.replace("{" + key + "}", value)
    return text


def script(platform: str, name: str, prefix: str) -> list[str]:
    """A file of several statements (`;` at a line end), split for a driver that runs one at a time."""
    text = "\n".join(line for line in statement(platform, name, prefix).splitlines()
                     if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", text, flags=re.MULTILINE) if part.strip()]


def stock_index_table(prefix: str, stock_id: int) -> str:
    """MSI's index table of a non-default stock (the id comes from the store's own link table)."""
    return checked_prefix(prefix) + _STOCK_INDEX.format(stock_id=int(stock_id))


def connect_args(dsn: str) -> dict[str, Any]:
    """`MySQLdb.connect` keyword arguments from `mysql://user:password@host:port/database`."""
    parts = urlsplit(dsn)
    if parts.scheme not in {"mysql", "mariadb"} or not parts.hostname or not parts.path.strip("/"):
        raise ValueError("the shop connection must be mysql://USER:PASSWORD@HOST:PORT/DATABASE (an Airflow "
                         f"MySQL connection's URI); got scheme {parts.scheme!r}")
    return {"host": parts.hostname, "port": parts.port or 3306, "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "database": unquote(parts.path.strip("/")),
            "charset": "utf8mb4"}


def load_plan(cur: Any, create_table: str, rows: Iterable[tuple[str, int, int]]) -> int:
    """(Re)create the temporary table `stocksync_plan` with `create_table` and load the writes
    (sku, new_qty, wms_seq) in multi-row INSERTs, before any row is locked; returns how many."""
    cur.execute("DROP TEMPORARY TABLE IF EXISTS stocksync_plan")
    cur.execute(create_table)
    loaded = 0
    writes = iter(rows)
    while batch := list(islice(writes, PLAN_BATCH)):
        cur.executemany("INSERT INTO stocksync_plan (sku, new_qty, wms_seq) VALUES (%s, %s, %s)", batch)
        loaded += len(batch)
    return loaded


# MySQL/MariaDB error codes: transient (lock wait, deadlock, connection lost) vs. the adapter not
# fitting the store's tables (unknown table/column)
_TRANSIENT_CODES = frozenset({1205, 1213, 2002, 2003, 2006, 2013})
_CONTRACT_CODES = frozenset({1054, 1146})


@contextmanager
def classified(what: str, platform: str) -> Iterator[None]:
    """A lock timeout, deadlock or lost connection is transient (`ShopUnavailable`); a statement
    that does not fit the store's tables is permanent (`ShopContractError`); both keep the cause."""
    try:
        yield
    except MySQLdb.Error as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _TRANSIENT_CODES:
            raise ShopUnavailable(f"{what}: the {platform} database did not answer in time or dropped the "
                                  f"connection ({exc}); raise lock_timeout_seconds or retry later") from exc
        if code in _CONTRACT_CODES:
            raise ShopContractError(f"{what}: the store's tables are not what the {platform} adapter expects "
                                    f"({exc}); check the table prefix ({platform} table_prefix) and the "
                                    "platform version (docs/platforms.md)") from exc
        raise


class MySQLShop:
    """Connections, transactions and side-table migrations of one store on MySQL/MariaDB."""

    def __init__(self, dsn: str, platform: str, table_prefix: str) -> None:
        self.connect_args = connect_args(dsn)
        self.platform = platform
        self.prefix = checked_prefix(table_prefix)
        self._migrated = False

    def sql(self, name: str, **identifiers: str) -> str:
        return statement(self.platform, name, self.prefix, **identifiers)

    def classified(self, what: str) -> Any:
        return classified(what, self.platform)

    def connect(self) -> Any:
        with self.classified("connecting to the shop database"):
            conn = MySQLdb.connect(**self.connect_args)
            conn.autocommit(False)
            with conn.cursor() as cur:
                # each statement sees what was committed before it: what the apply reads under its
                # lock includes every order or shipment that committed before the lock was granted
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                cur.execute("SET SESSION time_zone = '+00:00'")
        return conn

    def stream_catalog_rows(self, sink: StagingSink, what: str, catalog_sql: str) -> int:
        """Write each (sku, enabled) row `catalog_sql` selects to `sink`, in one shop transaction;
        returns how many."""
        rows = 0
        with self.transaction() as conn, self.classified(what), conn.cursor() as cur:
            cur.execute(catalog_sql)
            for sku, enabled in cur.fetchall():
                sink.write_row((sku, bool(enabled)))
                rows += 1
        return rows

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One shop transaction: committed when the block ends normally, rolled back when it raises."""
        conn = self.connect()
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def migrate(self) -> list[str]:
        """Apply stocksync's side-table migrations not applied yet (in version order); returns them."""
        applied: list[str] = []
        with self.transaction() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.prefix}stocksync_migration (version varchar(64) NOT NULL "
                        "PRIMARY KEY, applied_at timestamp NOT NULL DEFAULT current_timestamp()) ENGINE=InnoDB")
            cur.execute(f"SELECT version FROM {self.prefix}stocksync_migration")
            done = {version for (version,) in cur.fetchall()}
            for path in sorted((SQL_ROOT / self.platform / "migrations").glob("*.sql")):
                if path.stem in done:
                    continue
                for sql_text in script(self.platform, f"migrations/{path.stem}", self.prefix):
                    cur.execute(sql_text)
                cur.execute(f"INSERT INTO {self.prefix}stocksync_migration (version) VALUES (%s)", (path.stem,))
                applied.append(path.stem)
        self._migrated = True
        return applied

    def ensure_migrated(self) -> None:
        if not self._migrated:
            self.migrate()

    def create_platform_schema(self) -> None:
        """Development and tests: the platform's tables stocksync uses (include/sql/<platform>/platform_schema.sql)."""
        with self.transaction() as conn, conn.cursor() as cur:
            for sql_text in script(self.platform, "platform_schema", self.prefix):
                cur.execute(sql_text)

    # -- not offered through the database yet (docs/platforms.md) -----------------------------------
    def _unsupported(self, what: str) -> ShopContractError:
        return ShopContractError(
            f"{self.platform}: {what} is not available through the store's database yet; run with freeze_mode "
            "none (the platform's checkout never waits on stocksync's write: docs/platforms.md) and the order "
            "push and live write-back switched off")

    def set_freeze(self, *, set_by: str, reason: str, message: str, placeholder: str,
                   ttl_seconds: float) -> Freeze:
        raise self._unsupported("the checkout freeze")

    def release_freezes(self, *, set_by: str) -> int:
        return 0  # nothing can have been set

    def freeze_seconds(self, *, set_by: str) -> float:
        return 0.0

    def active_freezes(self, *, set_by: str | None = None) -> list[ActiveFreeze]:
        return []

    def unacknowledged_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        raise self._unsupported("the order push")

    def cancelled_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        raise self._unsupported("the order push")

    def order_push_session(self, *, lock_timeout_seconds: float) -> Any:
        raise self._unsupported("the order push")

    def live_session(self, sku: str, *, lock_timeout_seconds: float) -> Any:
        raise self._unsupported("the availability service's live write-back")
