"""Magento 2 with MSI, on MySQL/MariaDB, behind the shop port (include/stocksync/shop/port.py).

What the storefront sells (Magento's salable quantity) is the stock's index quantity plus the
stock's reservations (negative for orders not yet shipped or cancelled) less the effective min qty.
stocksync hands the port the sellable figure `new` it computed from the WMS (`available - units of
orders the WMS has not counted`, never below 0). Magento will subtract, through its reservations,
every order it still holds, including those the WMS already counted in `available`; so the WMS's
source gets

    quantity = new + units still reserved by the orders read under the lock

(the uncounted ones were already taken off `new`, the counted ones must not be taken twice), and
the storefront then shows `new` less the orders placed after that read, less the min qty. Worked
example and what the merchant configures: docs/platforms.md.

The write keeps what Magento keeps itself when it saves a source item: for the default source the
legacy `cataloginventory_stock_item` and `cataloginventory_stock_status` rows (the storefront reads
the default stock through them; MSI's indexer skips it), for other stocks their index table
(`inventory_stock_<id>`), recomputed over all of the stock's sources. stocksync's own state (the
WMS sequence per SKU, the WMS's order acknowledgements) lives in side tables of its versioned
migrations (include/sql/magento2/migrations), never in a column of a Magento table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from include.stocksync.shop.mysql_family import (
    MySQLShop,
    load_plan,
    lock_wait_seconds,
    status_map,
    stock_index_table,
    stock_row,
    stream_rows,
    temporary_table,
)
from include.stocksync.shop.port import (
    DemandQuery,
    DemandRow,
    Sellable,
    ShopContractError,
    StagingSink,
    StockRow,
    StockWrite,
)

PLATFORM = "magento2"
DEFAULT_SOURCE = "default"
DEFAULT_STOCK_ID = 1
DEFAULT_STORE_ID = 1  # Magento's default store view
# stocksync's order status names -> Magento's `sales_order.status` codes (its default statuses;
# the merchant's own go in the magento2 `order_statuses` setting): docs/platforms.md
DEFAULT_ORDER_STATUSES: dict[str, tuple[str, ...]] = {
    "placed": ("pending",),
    "paid": ("processing",),
    "processing": ("processing",),
    "shipped": ("complete",),
    "cancelled": ("canceled",),
}
ANY_RESERVATION = 2**32  # above every `inventory_reservation.reservation_id` (int unsigned)
# the columns of the temporary tables stocksync_plan and of the reserved units (stocksync_reserved*)
_PLAN_COLUMNS = """sku varchar(64) NOT NULL PRIMARY KEY, new_qty bigint NOT NULL, wms_seq bigint NOT NULL,
  product_id int unsigned NULL, target_qty decimal(16,4) NULL, target_status smallint NULL,
  has_item tinyint(1) NOT NULL DEFAULT 0, has_legacy_item tinyint(1) NOT NULL DEFAULT 0,
  write_it tinyint(1) NOT NULL DEFAULT 0"""
_RESERVED_COLUMNS = ("sku varchar(64) NOT NULL PRIMARY KEY, open_units decimal(14,4) NOT NULL, "
                     "unsent_units decimal(14,4) NOT NULL")
_PLANNED_SKUS = "AND r.sku IN (SELECT sku FROM stocksync_plan)"
# Magento's quantity columns (inventory_source_item.quantity, the legacy stock item and status qty)
# are decimal(12,4): at most 99,999,999.9999. stocksync's own bound (max_quantity) is 1e9.
MAGENTO_MAX_QUANTITY = 99_999_999
_SOME_SKUS = "AND r.sku IN %(skus)s"  # the bound `skus` only (the live write-back's one SKU)


def _whole_units(value: Any) -> int:
    """Units as the port carries them (Magento stores decimal(12,4); fractions are rounded down)."""
    return int(math.floor(float(value)))


class _Apply:
    """The apply's one transaction. Nothing is locked until the write: checkout never waits on
    Magento (orders are reservations), and the write locks only the source items it writes, against
    shipments and credit memos, then reads their reservations again (update_plan_targets.sql)."""

    def __init__(self, shop: Magento2Shop, conn: Any, upto_reservation_id: int,
                 skus: Sequence[str] | None = None) -> None:
        self.shop = shop
        self.conn = conn
        self.upto = upto_reservation_id
        self.skus = skus  # None: every SKU (the nightly); else the live write-back's one SKU
        self.params = self._params(None)
        self.reserved_read = False
        self.rows_locked_at: float | None = None  # the write's lock on the source items it writes

    def _params(self, query: DemandQuery | None) -> dict[str, Any]:
        return {**self.shop.reservation_params(query, upto=self.upto), "skus": tuple(self.skus or ())}

    def _read_reserved(self, query: DemandQuery | None, into: str, sku_filter: str = "") -> None:
        """Every order's reserved units (of the planned SKUs with `sku_filter`) into the temporary
        table `into`: the units held and, of those, the units the WMS had not counted."""
        with self.shop.classified("reading Magento's reservations"), self.conn.cursor() as cur:
            temporary_table(cur, into, _RESERVED_COLUMNS, self.shop.text_charset(cur))
            if query is not None or sku_filter:
                cur.execute(f"INSERT INTO {into} (sku, open_units, unsent_units) "
                            + self.shop.sql("select_open_reservations", sku_filter=sku_filter), self.params)

    def read_reserved(self, query: DemandQuery | None) -> None:
        """The demand read: every order's reserved units (of the live write-back's SKU only) and, of
        those, the units the WMS had not counted; the write adds back what was taken off here."""
        self.params = self._params(query)
        self._read_reserved(query, "stocksync_reserved", _SOME_SKUS if self.skus is not None else "")
        self.reserved_read = True

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.read_reserved(query)
        rows = 0
        with self.conn.cursor() as cur:
            cur.execute("SELECT sku, unsent_units FROM stocksync_reserved WHERE unsent_units > 0 ORDER BY sku")
            for sku, unsent in cur.fetchall():
                sink.write_row((sku, _whole_units(unsent), 0))
                rows += 1
        return rows

    def read_stock(self, skus: Sequence[str]) -> list[StockRow]:
        return self.shop.stock_rows(self.conn, skus, upto=self.upto)

    def write_stock(self, writes: Iterable[StockWrite]) -> list[str]:
        if not self.reserved_read:  # no demand read: `new` took no order off
            self._read_reserved(None, "stocksync_reserved")
        shop = self.shop
        params = shop.write_params()
        with self.shop.classified("writing the WMS source's items"), self.conn.cursor() as cur:
            if not load_plan(cur, _PLAN_COLUMNS, ((w.sku, int(w.new_qty), int(w.wms_seq)) for w in writes),
                             shop.text_charset(cur)):
                return []
            cur.execute(shop.sql("update_plan_products"))
            cur.execute(shop.sql("select_source_stocks"), params)
            stocks = [int(stock_id) for (stock_id,) in cur.fetchall()]
            self.rows_locked_at = time.perf_counter()
            cur.execute(shop.sql("lock_source_items"), params)
            self._read_reserved(None, "stocksync_reserved_now", _PLANNED_SKUS)
            cur.execute(shop.sql("update_plan_targets"))
            refuse_unstorable_quantities(cur)
            cur.execute(shop.sql("update_plan_writes"), params)
            cur.execute(shop.sql("update_source_items"), params)
            cur.execute(shop.sql("insert_source_items"), params)
            for stock_id in stocks:
                if stock_id == DEFAULT_STOCK_ID:
                    cur.execute(shop.sql("update_legacy_stock_item"), params)
                    cur.execute(shop.sql("insert_legacy_stock_item"), params)
                    cur.execute(shop.sql("upsert_legacy_stock_status"), params)
                else:
                    cur.execute(shop.sql("upsert_stock_index", index=stock_index_table(shop.prefix, stock_id)),
                                {**params, "stock_id": stock_id})
            cur.execute(shop.sql("upsert_sku_state"), params)
            cur.execute("SELECT sku FROM stocksync_plan WHERE write_it ORDER BY sku")
            return [sku for (sku,) in cur.fetchall()]


def refuse_unstorable_quantities(cur: Any) -> None:
    """Refuse, before anything is written, a plan whose source quantity Magento cannot store (more
    than MAGENTO_MAX_QUANTITY): a clear error naming the SKUs, not MariaDB's "Out of range value for
    column 'target_qty'" in the middle of the apply."""
    cur.execute("SELECT sku, target_qty FROM stocksync_plan WHERE target_qty > %s ORDER BY sku LIMIT 6",
                (MAGENTO_MAX_QUANTITY,))
    found = cur.fetchall()
    if found:
        shown = ", ".join(f"{sku} ({float(qty):,.0f})" for sku, qty in found[:5])
        raise ShopContractError(
            f"Magento's quantity columns hold at most {MAGENTO_MAX_QUANTITY:,} units (decimal(12,4)); this plan "
            f"would write more for {shown}{' and more' if len(found) > 5 else ''}. Nothing was written. Lower the "
            f"validation's max_quantity to {MAGENTO_MAX_QUANTITY} for a magento2 shop, so that such WMS figures are "
            "quarantined instead")


class _Live:
    """The live write-back of one SKU (port.LiveSession): its WMS source item locked as a shipment
    locks it, its reservations read under that lock, the write the apply's own (source item, legacy
    tables or stock index, sequence)."""

    def __init__(self, shop: Magento2Shop, conn: Any, sku: str, upto_reservation_id: int) -> None:
        self.shop = shop
        self.sku = sku
        self.apply = _Apply(shop, conn, upto_reservation_id, [sku])
        found = shop.stock_rows(conn, [sku], upto=upto_reservation_id)
        self._current = found[0] if found else None

    @property
    def current(self) -> StockRow | None:
        return self._current

    def demand(self, query: DemandQuery) -> DemandRow:
        self.apply.read_reserved(query)
        with self.apply.conn.cursor() as cur:
            cur.execute("SELECT COALESCE(SUM(unsent_units), 0) FROM stocksync_reserved")
            (unsent,) = cur.fetchone()
        return DemandRow(self.sku, _whole_units(unsent), 0)

    def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        if self._current is None or self._current.wms_seq >= wms_seq:
            return None
        if not self.apply.write_stock([StockWrite(self.sku, new_qty, wms_seq)]):
            return None
        found = self.shop.stock_rows(self.apply.conn, [self.sku], upto=self.apply.upto)
        self._current = found[0] if found else None
        return self._current


class Magento2Shop(MySQLShop):
    """The `magento2` adapter. `dsn`: mysql://USER:PASSWORD@HOST:PORT/DATABASE. Options:
    `table_prefix` (the store's db table prefix), `source_code` (the MSI source the WMS feeds;
    `default`: the default source), `config_min_qty` and `config_backorders` (the store's
    Catalog > Inventory > Product Stock Options defaults, used where a product keeps the config),
    `order_statuses` (stocksync's status names -> `sales_order.status` codes, on top of
    `DEFAULT_ORDER_STATUSES`), `store_ids` (the store views whose orders the order push sends;
    empty: every store view)."""

    sku_column = ("inventory_source_item", "sku")

    platform = PLATFORM

    def __init__(self, dsn: str, *, table_prefix: str = "", source_code: str = DEFAULT_SOURCE,
                 config_min_qty: float = 0.0, config_backorders: bool = False,
                 order_statuses: Mapping[str, Sequence[str]] | None = None, store_ids: Sequence[int] = ()) -> None:
        super().__init__(dsn, PLATFORM, table_prefix)
        self.store_ids = store_scope(store_ids)
        self.order_statuses = status_map(PLATFORM, DEFAULT_ORDER_STATUSES, order_statuses, _status_code)
        if not source_code or len(source_code) > 255:
            raise ValueError("magento2 source_code: the code of the MSI source the WMS feeds (1-255 characters)")
        self.source_code = source_code
        self.config_min_qty = float(config_min_qty)
        self.config_backorders = bool(config_backorders)

    def reservation_params(self, query: DemandQuery | None, upto: int = ANY_RESERVATION) -> dict[str, Any]:
        """`query` None: every reserved unit counts as already taken off (the write's add-back).
        `upto`: only reservations up to this id (the apply's: those appended before its lock)."""
        include = bool(query and query.include_orders)
        watermark = query.watermark if query else datetime.now(UTC)
        return {"source_code": self.source_code, "include_orders": include,
                "watermark": watermark.astimezone(UTC).replace(tzinfo=None), "upto_reservation_id": upto}

    def order_params(self, conn: Any) -> dict[str, Any]:
        """The order push's store views (`store_ids`; none named: every store view)."""
        return {"all_stores": not self.store_ids, "store_ids": self.store_ids or (0,)}

    def write_params(self) -> dict[str, Any]:
        return {"source_code": self.source_code, "config_backorders": int(self.config_backorders),
                "config_min_qty": self.config_min_qty}

    def open_reservations_sql(self, some_skus: bool) -> str:
        """select_open_reservations.sql over every SKU, or over the bound `skus` only."""
        return self.sql("select_open_reservations", sku_filter=_SOME_SKUS if some_skus else "")

    def stock_sql(self, some_skus: bool) -> str:
        """select_stock.sql over every source item, or over those of the bound `skus` only."""
        return self.sql("select_stock", open_reservations=self.open_reservations_sql(some_skus),
                        sku_filter="AND si.sku IN %(skus)s" if some_skus else "")

    def stock_rows(self, conn: Any, skus: Sequence[str] | None, upto: int = ANY_RESERVATION) -> list[StockRow]:
        params = {**self.reservation_params(None, upto), "skus": tuple(skus or ())}
        if skus is not None and not skus:
            return []
        text = self.stock_sql(skus is not None)
        with self.classified("reading the WMS source's stock"), conn.cursor() as cur:
            cur.execute(text, params)
            return [StockRow(sku, int(qty), int(seq)) for sku, qty, seq in cur.fetchall()]

    # -- bulk reads -----------------------------------------------------------------------------
    def stream_catalog(self, sink: StagingSink) -> int:
        return self.stream_catalog_rows(sink, "reading the Magento catalog", self.sql("select_catalog"))

    def stream_stock(self, sink: StagingSink) -> int:
        self.ensure_migrated()
        with self.transaction() as conn, self.classified("reading the WMS source's stock"):
            return stream_rows(conn, self.stock_sql(False), {**self.reservation_params(None), "skus": ()}, sink,
                               stock_row)

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.ensure_migrated()
        rows = 0
        with self.transaction() as conn, self.classified("reading Magento's reservations"), conn.cursor() as cur:
            cur.execute(self.open_reservations_sql(False), self.reservation_params(query))
            for sku, _open, unsent in cur.fetchall():
                if unsent > 0:
                    sink.write_row((sku, _whole_units(unsent), 0))
                    rows += 1
        return rows

    # -- the apply ------------------------------------------------------------------------------
    @contextmanager
    def apply_session(self, *, lock_timeout_seconds: float) -> Iterator[_Apply]:
        wait = lock_wait_seconds(lock_timeout_seconds)
        self.ensure_migrated()
        with self.transaction() as conn:
            with self.classified("locking the WMS source's items"), conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
                self.hold_back_order_push(cur)
                # nothing of the stock is locked yet: the write locks the source items it writes;
                # reservations appended from now on (MSI's checkout takes no lock) are never added back
                upto = self.last_reservation_id(cur)
            yield _Apply(self, conn, upto)

    @contextmanager
    def live_session(self, sku: str, *, lock_timeout_seconds: float) -> Iterator[_Live]:
        wait = lock_wait_seconds(lock_timeout_seconds)
        self.ensure_migrated()
        with self.transaction() as conn:
            with self.classified("locking one source item"), conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
                cur.execute(self.sql("lock_source_item"), {"source_code": self.source_code, "sku": sku})
                upto = self.last_reservation_id(cur)
            yield _Live(self, conn, sku, upto)

    def last_reservation_id(self, cur: Any) -> int:
        """The reservation log's last id when the session opens: later reservations (checkouts
        during the apply or the write-back, which take no lock) are subtracted by Magento, never
        added back."""
        cur.execute(f"SELECT COALESCE(MAX(reservation_id), 0) FROM {self.prefix}inventory_reservation")
        (upto,) = cur.fetchone()
        return int(upto)

    def sellable(self, sku: str) -> Sellable | None:
        with self.transaction() as conn:
            with conn.cursor() as cur:
                cur.execute(self.sql("select_catalog_sku"), {"sku": sku})
                found = cur.fetchone()
            if found is None:
                return None
            rows = self.stock_rows(conn, [sku])
        row = rows[0] if rows else None
        return Sellable(sku, bool(found[1]), row.qty if row else None, row.wms_seq if row else None)


def _status_code(value: Any) -> str:
    code = str(value)
    if not code or len(code) > 32:
        raise ValueError(f"a sales_order.status code has 1-32 characters; got {value!r}")
    return code


def store_scope(store_ids: Sequence[int]) -> tuple[int, ...]:
    """The magento2 `store_ids` option checked: `store.store_id` values (0..65535), each once."""
    scope: list[int] = []
    for value in store_ids:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise ValueError(f"magento2 store_ids: store view ids (store.store_id, 0-65535); got {value!r}")
        if value not in scope:
            scope.append(value)
    return tuple(scope)


def acknowledge_orders(shop: Magento2Shop, acknowledged: Mapping[tuple[int, str] | str, datetime]) -> None:
    """Record when the WMS counted orders, by (store_id, increment_id) (a first time is kept); a bare
    increment id is an order of the default store view (`DEFAULT_STORE_ID`). The order push does
    this through its session; development seeds and tests call it directly."""
    shop.ensure_migrated()
    rows = []
    for key, at in acknowledged.items():
        store_id, increment_id = (DEFAULT_STORE_ID, key) if isinstance(key, str) else key
        rows.append((int(store_id), str(increment_id), at.astimezone(UTC).replace(tzinfo=None)))
    with shop.transaction() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT IGNORE INTO {shop.prefix}stocksync_order_ack_by_store (store_id, increment_id, "
                        "acknowledged_at) VALUES (%s, %s, %s)", rows)


def create_platform_schema(shop: Magento2Shop, stock_ids: Sequence[int] = ()) -> None:
    """Development and tests: the Magento tables stocksync uses, and index tables of `stock_ids`."""
    shop.create_platform_schema()
    with shop.transaction() as conn, conn.cursor() as cur:
        for stock_id in stock_ids:
            if int(stock_id) != DEFAULT_STOCK_ID:
                cur.execute(shop.sql("create_stock_index", index=stock_index_table(shop.prefix, stock_id)))
