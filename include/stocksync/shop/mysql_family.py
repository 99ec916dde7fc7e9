"""What the shop adapters on MySQL/MariaDB share (magento2, prestashop): their statements (files under
include/sql/<platform>/, the store's table prefix put in for `{p}`, validated: letters, digits,
`_`; values always bound, `%(name)s`), connections (mysqlclient, READ COMMITTED, UTC), error
classes, and stocksync's versioned side-table migrations (include/sql/<platform>/migrations)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import MySQLdb
import MySQLdb.cursors

from include.stocksync.shop.port import (
    ActiveFreeze,
    Freeze,
    OrderLine,
    OrderRef,
    ShopContractError,
    ShopUnavailable,
    StagingSink,
)

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
FAMILY = "mysql_family"  # the statements and migrations both platforms share (include/sql/mysql_family)
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_STOCK_INDEX = "inventory_stock_{stock_id}"
# rows per multi-row INSERT of the plan (mysqlclient's executemany sends one statement per batch)
PLAN_BATCH = 5000
# rows taken at a time from an unbuffered bulk read (the catalog, the stock) on their way to the sink
STREAM_BATCH = 10000


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


def _utc(value: datetime) -> datetime:
    """A DATETIME the adapter wrote in UTC (the session's time zone), as an aware datetime."""
    return value.replace(tzinfo=UTC)


def connect_args(dsn: str) -> dict[str, Any]:
    """`MySQLdb.connect` keyword arguments from `mysql://user:password@host:port/database`."""
    parts = urlsplit(dsn)
    if parts.scheme not in {"mysql", "mariadb"} or not parts.hostname or not parts.path.strip("/"):
        raise ValueError("the shop connection must be mysql://USER:PASSWORD@HOST:PORT/DATABASE (an Airflow "
                         f"MySQL connection's URI); got scheme {parts.scheme!r}")
    return {"host": parts.hostname, "port": parts.port or 3306, "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "database": unquote(parts.path.strip("/")),
            "charset": "utf8mb4"}


def stream_rows(conn: Any, sql_text: str, params: Mapping[str, Any] | None, sink: StagingSink,
                convert: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> int:
    """Write each row `sql_text` selects, through `convert` (the port's strict types), to `sink` as
    it arrives: an unbuffered cursor (mysqlclient's SSCursor) read `STREAM_BATCH` rows at a time, so
    the shop's whole catalog is never held in memory and the copy into stocksync's staging runs
    while the shop still sends. The connection runs nothing else until the last row is read."""
    rows = 0
    with conn.cursor(MySQLdb.cursors.SSCursor) as cur:
        cur.execute(sql_text, params)
        while batch := cur.fetchmany(STREAM_BATCH):
            for row in batch:
                sink.write_row(convert(row))
            rows += len(batch)
    return rows


def catalog_row(row: tuple[Any, ...]) -> tuple[str, bool]:
    sku, enabled = row
    return str(sku), bool(enabled)


def stock_row(row: tuple[Any, ...]) -> tuple[str, int, int]:
    sku, qty, wms_seq = row
    return str(sku), int(qty), int(wms_seq)


def temporary_table(cur: Any, name: str, columns: str, charset: str = "") -> None:
    """The session's temporary table `name` (columns and keys `columns`), empty: one of an earlier
    call in the same session (the live write-back's demand read and write) is dropped first. Its
    text columns take `charset` (`MySQLShop.text_charset`: the store's SKU column's), so that they
    compare with the store's tables whatever the database's default collation."""
    cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
    cur.execute(f"CREATE TEMPORARY TABLE {name} ({columns}) ENGINE=InnoDB{charset}")


def load_plan(cur: Any, columns: str, rows: Iterable[tuple[str, int, int]], charset: str = "") -> int:
    """(Re)create the temporary table `stocksync_plan` with the adapter's `columns` and load the
    writes (sku, new_qty, wms_seq) in multi-row INSERTs, before any row is locked; returns how many."""
    temporary_table(cur, "stocksync_plan", columns, charset)
    loaded = 0
    writes = iter(rows)
    while batch := list(islice(writes, PLAN_BATCH)):
        cur.executemany("INSERT INTO stocksync_plan (sku, new_qty, wms_seq) VALUES (%s, %s, %s)", batch)
        loaded += len(batch)
    return loaded


_CHARSET_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
# MySQL/MariaDB error codes: transient (lock wait, deadlock, connection lost) vs. the adapter not
# fitting the store's tables (unknown table/column)
_TRANSIENT_CODES = frozenset({1205, 1213, 2002, 2003, 2006, 2013})
_CONTRACT_CODES = frozenset({1054, 1146})
# a value or comparison the server refuses (out of range, truncated, incorrect, too long, an illegal
# mix of collations), whatever exception class the driver files it under: the same data fails again
_DATA_CODES = frozenset({1264, 1265, 1267, 1270, 1271, 1292, 1366, 1406, 1690})


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
        if code in _DATA_CODES or isinstance(exc, (MySQLdb.DataError, MySQLdb.IntegrityError,
                                                    MySQLdb.ProgrammingError, MySQLdb.NotSupportedError)):
            raise ShopContractError(f"{what}: the {platform} database refused a value or a statement ({exc}): "
                                    "the store's data or tables are not what the adapter expects, and retrying "
                                    "cannot change that (docs/platforms.md)") from exc
        raise


def lock_wait_seconds(lock_timeout_seconds: float) -> int:
    """InnoDB's lock wait for `lock_timeout_seconds` (it waits in whole seconds, at least 1)."""
    if not lock_timeout_seconds > 0:
        raise ValueError(f"lock_timeout_seconds must be > 0; got {lock_timeout_seconds}")
    return max(1, math.ceil(lock_timeout_seconds))


def status_map(platform: str, defaults: Mapping[str, Sequence[Any]], overrides: Mapping[str, Sequence[Any]] | None,
               convert: Callable[[Any], Any]) -> dict[str, tuple[Any, ...]]:
    """stocksync's order status names (`unsent_statuses`, `loop.cancelled_statuses`) -> the
    platform's own order statuses, the defaults with the merchant's `order_statuses` on top."""
    merged = {**defaults, **(overrides or {})}
    result: dict[str, tuple[Any, ...]] = {}
    for name, values in merged.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ValueError(f"{platform} order_statuses[{name!r}]: a list of the platform's order statuses; "
                             f"got {values!r}")
        try:
            result[str(name)] = tuple(convert(value) for value in values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{platform} order_statuses[{name!r}]: {exc}") from exc
    return result


def naive_utc(moment: datetime) -> datetime:
    """A time as the MySQL-family side tables store it: UTC, without a zone (the sessions run in UTC)."""
    if moment.tzinfo is None:
        raise ValueError(f"a time without a zone ({moment.isoformat()}): give it in UTC")
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Variant:
    """One storefront variant: the code the storefront shows (the parent's SKU or reference), the
    options that pick it (option name -> value, as the shop labels them) and the SKU it sells."""

    code: str
    options: dict[str, str]
    sku: str


class _OrderPush:
    """One order-push batch's shop transaction (port.OrderPushSession), holding the order-push lock."""

    def __init__(self, shop: MySQLShop, conn: Any) -> None:
        self.shop = shop
        self.conn = conn

    def order_lines(self, order_ids: Sequence[int]) -> list[OrderLine]:
        ids = tuple(int(i) for i in order_ids)
        if not ids:
            return []
        with self.shop.classified("reading the lines of the orders to send"), self.conn.cursor() as cur:
            cur.execute(self.shop.sql("select_order_lines"), {"order_ids": ids})
            return [OrderLine(int(order_id), str(sku), int(units)) for order_id, sku, units in cur.fetchall()]

    def acknowledge(self, order_ids: Sequence[int], acknowledged_at: Sequence[datetime]) -> list[int]:
        if len(order_ids) != len(acknowledged_at):
            raise ValueError("acknowledge needs one receipt time per order")
        when = {int(i): naive_utc(at) for i, at in zip(order_ids, acknowledged_at, strict=True)}
        if not when:
            return []
        with self.shop.classified("recording the WMS's acknowledgements"), self.conn.cursor() as cur:
            # the store's orders among them that have no acknowledgement yet (a first time is kept)
            cur.execute(self.shop.sql("select_orders_to_acknowledge"), {"order_ids": tuple(when)})
            new = {int(order_id): key for order_id, key in cur.fetchall()}
            changed = [i for i in when if i in new]
            if changed:
                cur.executemany(self.shop.sql("insert_order_ack"), [(new[i], when[i]) for i in changed])
        return changed


class MySQLShop:
    """Connections, transactions and side-table migrations of one store on MySQL/MariaDB."""

    # stocksync's order status name -> the platform's order statuses (set by each adapter)
    order_statuses: dict[str, tuple[Any, ...]]
    # the store's table and column holding the SKUs stocksync's temporary tables are compared with
    sku_column: tuple[str, str]

    def __init__(self, dsn: str, platform: str, table_prefix: str) -> None:
        self.connect_args = connect_args(dsn)
        self.platform = platform
        self.prefix = checked_prefix(table_prefix)
        self._migrated = False
        self._text_charset: str | None = None

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
        with self.transaction() as conn, self.classified(what):
            return stream_rows(conn, catalog_sql, None, sink, catalog_row)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One shop transaction: committed when the block ends normally, rolled back when it raises."""
        conn = self.connect()
        try:
            yield conn
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except MySQLdb.Error:  # the connection is gone (the server rolls back): the first error stands
                pass
            raise
        finally:
            try:
                conn.close()
            except MySQLdb.Error:
                pass

    def migrate(self) -> list[str]:
        """Apply stocksync's side-table migrations not applied yet: the platform's own
        (include/sql/<platform>/migrations, recorded by name) then the family's shared ones
        (include/sql/mysql_family/migrations: the checkout freeze, recorded as `mysql_family/<name>`),
        each folder in version order. Returns the versions applied."""
        applied: list[str] = []
        with self.transaction() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.prefix}stocksync_migration (version varchar(64) NOT NULL "
                        "PRIMARY KEY, applied_at timestamp NOT NULL DEFAULT current_timestamp()) ENGINE=InnoDB")
            cur.execute(f"SELECT version FROM {self.prefix}stocksync_migration")
            done = {version for (version,) in cur.fetchall()}
            for folder, label in ((self.platform, ""), (FAMILY, f"{FAMILY}/")):
                for path in sorted((SQL_ROOT / folder / "migrations").glob("*.sql")):
                    version = label + path.stem
                    if version in done:
                        continue
                    for sql_text in script(folder, f"migrations/{path.stem}", self.prefix):
                        cur.execute(sql_text)
                    cur.execute(f"INSERT INTO {self.prefix}stocksync_migration (version) VALUES (%s)", (version,))
                    applied.append(version)
        self._migrated = True
        return applied

    def ensure_migrated(self) -> None:
        if not self._migrated:
            self.migrate()

    def text_charset(self, cur: Any) -> str:
        """` DEFAULT CHARSET=<set> COLLATE=<collation>` of the store's SKU column (`sku_column`), for
        stocksync's temporary tables. Without it they take the database's default, and a database
        whose default collation is not its tables' (a hosting panel's, MariaDB 11's uca1400) failed
        every apply on "Illegal mix of collations". Read once per shop object."""
        if self._text_charset is None:
            table, column = self.sku_column
            cur.execute("SELECT CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                        (self.prefix + table, column))
            row = cur.fetchone()
            named = row is not None and all(isinstance(v, str) and _CHARSET_NAME.fullmatch(v) for v in row)
            self._text_charset = f" DEFAULT CHARSET={row[0]} COLLATE={row[1]}" if named else ""
        return self._text_charset

    def hold_back_order_push(self, cur: Any) -> None:
        """The apply's side of the order-push lock (first in its transaction)."""
        cur.execute(self.family_sql("lock_order_push_apply"))

    # -- the storefront's variants ------------------------------------------------------------------
    def variant_params(self) -> dict[str, Any]:
        """Bound parameters of the platform's select_variants.sql (none here)."""
        return {}

    def variant_skus(self) -> list[Variant]:
        """Every variant the storefront sells as options of a parent (Magento configurable
        children, PrestaShop combinations), for the availability service's SKU map."""
        with self.transaction() as conn, self.classified("reading the storefront's variants"), conn.cursor() as cur:
            cur.execute(self.sql("select_variants"), self.variant_params())
            rows = cur.fetchall()
        variants: dict[tuple[str, str], dict[str, str]] = {}
        for code, name, value, sku in rows:
            variants.setdefault((str(code), str(sku)), {})[str(name)] = str(value)
        return [Variant(code, options, sku) for (code, sku), options in variants.items()]

    # -- the order push ----------------------------------------------------------------------------
    def platform_statuses(self, names: Sequence[str]) -> tuple[Any, ...]:
        """The platform's order statuses of stocksync's status `names` (config `order_statuses`)."""
        values: list[Any] = []
        for name in names:
            if name not in self.order_statuses:
                raise ShopContractError(
                    f"{self.platform}: order status {name!r} (unsent_statuses / loop.cancelled_statuses) has no "
                    f"{self.platform} order status; add it to the {self.platform} order_statuses setting "
                    f"(known: {sorted(self.order_statuses)}; docs/platforms.md)")
            values.extend(v for v in self.order_statuses[name] if v not in values)
        return tuple(values)

    def order_params(self, conn: Any) -> dict[str, Any]:
        """Bound parameters the platform's order statements need besides the statuses (none here)."""
        return {}

    def order_time(self, stored: datetime) -> datetime:
        """An order's creation time as the platform stores it, as an aware UTC time."""
        return stored.replace(tzinfo=UTC)

    def _orders(self, statement: str, statuses: Sequence[str], what: str) -> list[OrderRef]:
        values = self.platform_statuses(statuses)
        if not values:
            return []
        self.ensure_migrated()
        with self.transaction() as conn:
            params = {**self.order_params(conn), "statuses": values}
            with self.classified(what), conn.cursor() as cur:
                cur.execute(self.sql(statement), params)
                return [OrderRef(int(order_id), self.order_time(created)) for order_id, created in cur.fetchall()]

    def unacknowledged_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        return self._orders("select_unacknowledged_orders", statuses, "reading the orders to send")

    def cancelled_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        return self._orders("select_cancelled_orders", statuses, "reading the cancelled orders")

    @contextmanager
    def order_push_session(self, *, lock_timeout_seconds: float) -> Iterator[_OrderPush]:
        """The batch's transaction, holding the order-push lock in share mode: an apply (which takes
        it exclusively) waits until the acknowledgements commit; checkout never takes it."""
        wait = lock_wait_seconds(lock_timeout_seconds)
        self.ensure_migrated()
        with self.transaction() as conn:
            with self.classified("taking the order-push lock"), conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
                cur.execute(self.family_sql("lock_order_push_batch"))
            yield _OrderPush(self, conn)

    def create_platform_schema(self) -> None:
        """Development and tests: the platform's tables stocksync uses (include/sql/<platform>/platform_schema.sql)."""
        with self.transaction() as conn, conn.cursor() as cur:
            for sql_text in script(self.platform, "platform_schema", self.prefix):
                cur.execute(sql_text)

    # -- the checkout freeze: stocksync's side table, read by the web server's gate --------------
    def family_sql(self, name: str) -> str:
        return statement(FAMILY, name, self.prefix)

    def set_freeze(self, *, set_by: str, reason: str, message: str, placeholder: str,
                   ttl_seconds: float) -> Freeze:
        if not ttl_seconds > 0:
            raise ValueError(f"a freeze's ttl_seconds must be > 0; got {ttl_seconds}")
        self.ensure_migrated()
        with self.transaction() as conn, self.classified("closing checkout"), conn.cursor() as cur:
            cur.execute(self.family_sql("insert_checkout_freeze"), {
                "reason": reason, "message": message, "placeholder": placeholder, "set_by": set_by,
                "ttl_microseconds": round(ttl_seconds * 1_000_000)})
            cur.execute(self.family_sql("select_checkout_freeze_by_id"), {"freeze_id": cur.lastrowid})
            row = cur.fetchone()
        if row is None:
            raise ShopContractError(f"{self.platform}: the freeze just set was not found in stocksync_checkout_freeze")
        return Freeze(int(row[0]), _utc(row[1]), _utc(row[2]), str(row[3]))

    def release_freezes(self, *, set_by: str) -> int:
        self.ensure_migrated()
        with self.transaction() as conn, self.classified("reopening checkout"), conn.cursor() as cur:
            cur.execute(self.family_sql("update_checkout_freeze"), {"set_by": set_by})
            return int(cur.rowcount)

    def freeze_seconds(self, *, set_by: str) -> float:
        self.ensure_migrated()
        with self.transaction() as conn, self.classified("reading the freeze window"), conn.cursor() as cur:
            cur.execute(self.family_sql("select_checkout_freeze"), {"set_by": set_by})
            row = cur.fetchone()
        return float(row[0]) if row else 0.0

    def active_freezes(self, *, set_by: str | None = None) -> list[ActiveFreeze]:
        self.ensure_migrated()
        with self.transaction() as conn, self.classified("reading the active freezes"), conn.cursor() as cur:
            cur.execute(self.family_sql("select_active_freeze"), {"set_by": set_by})
            rows = cur.fetchall()
        return [ActiveFreeze(int(r[0]), str(r[1]), str(r[2]), str(r[3]), _utc(r[4]), _utc(r[5])) for r in rows]
