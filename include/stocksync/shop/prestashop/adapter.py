"""PrestaShop 8, on MySQL/MariaDB, behind the shop port (include/stocksync/shop/port.py).

PrestaShop sells `stock_available.quantity`, the master figure its checkout decrements when an
order is placed (`physical_quantity` and `reserved_quantity` are derived from it on order state
changes). stocksync hands the port `new = max(0, WMS available - units of the shop's orders the
WMS has not counted)`; the demand it subtracts is computed here from the orders (states that still
hold stock: not shipped, not error nor cancelled; `product_quantity - product_quantity_refunded`),
under the lock on the stock rows, never read from `reserved_quantity`. The adapter writes `new` as
`quantity` of the combination (or product) row, keeps the product row the sum of its combinations,
uses the shop group's shared rows (`id_shop = 0`, `id_shop_group`) when the group shares stock, and
never writes a row that `depends_on_stock`. Worked example: docs/platforms.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.stocksync.shop.mysql_family import (
    MySQLShop,
    load_plan,
    lock_wait_seconds,
    status_map,
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

PLATFORM = "prestashop"
# PrestaShop's default "Payment error" (PS_OS_ERROR) and "Canceled" (PS_OS_CANCELED) states
DEFAULT_NOT_RESERVING = (8, 6)
# stocksync's order status names -> PrestaShop 8's default order state ids (install data:
# 1 awaiting check, 10 awaiting bank wire, 13 awaiting cash on delivery, 12 on backorder unpaid;
# 2 payment accepted, 11 remote payment accepted, 9 on backorder paid; 3 processing in progress;
# 4 shipped, 5 delivered; 6 canceled). The merchant's own go in the prestashop `order_statuses`
# setting: docs/platforms.md
DEFAULT_ORDER_STATUSES: dict[str, tuple[int, ...]] = {
    "placed": (1, 10, 13, 12),
    "paid": (2, 11, 9),
    "processing": (3,),
    "shipped": (4, 5),
    "cancelled": (6,),
}
# the columns of the temporary tables stocksync_plan, of the demand read (stocksync_demand*) and of
# the product rows that hold the sum of their combinations (stocksync_totals: sum_product_totals.sql)
_PLAN_COLUMNS = """sku varchar(64) NOT NULL PRIMARY KEY, new_qty int NOT NULL, wms_seq bigint NOT NULL,
  id_product int unsigned NULL, id_product_attribute int unsigned NULL,
  has_row tinyint(1) NOT NULL DEFAULT 0, write_it tinyint(1) NOT NULL DEFAULT 0,
  KEY (id_product, id_product_attribute)"""
_DEMAND_COLUMNS = "sku varchar(64) NOT NULL PRIMARY KEY, units bigint NOT NULL"
_TOTALS_COLUMNS = """id_product int unsigned NOT NULL PRIMARY KEY, quantity bigint NOT NULL, physical bigint NOT NULL,
  has_row tinyint(1) NOT NULL DEFAULT 0"""
# the items (item_halves) restricted to the SKUs of stocksync_plan (indexed lookups by reference, not the catalog)
_PLANNED_REFERENCES = "AND {column} IN (SELECT sku FROM stocksync_plan)"


class _Scope:
    """Which stock rows the shop sells from and whose orders take from them."""

    def __init__(self, id_shop: int, id_shop_group: int, shared: bool, group_shops: Sequence[int]) -> None:
        self.shared = shared
        self.row_shop = 0 if shared else id_shop
        self.row_group = id_shop_group if shared else 0
        self.order_shops = tuple(group_shops) if shared else (id_shop,)
        self.key = f"group:{id_shop_group}" if shared else f"shop:{id_shop}"

    def params(self) -> dict[str, Any]:
        return {"row_shop": self.row_shop, "row_group": self.row_group, "scope": self.key,
                "shops": self.order_shops}


class _Apply:
    """The apply's one transaction. Nothing is locked until the write, which locks the scope's rows
    of the products it writes, then reads their orders again (update_plan_demand.sql)."""

    def __init__(self, shop: PrestaShopShop, conn: Any, scope: _Scope, upto_order: int | None = None) -> None:
        self.shop = shop
        self.conn = conn
        self.scope = scope
        self.demand_params: dict[str, Any] | None = None
        # the store's last order when the session opened (None: the live write-back, whose row lock
        # keeps orders of its SKU out): without a demand read in the session, an order placed since
        # took its units off `quantity` already and is taken off `new` too
        self.upto_order = upto_order
        self.rows_locked_at: float | None = None  # the write's lock on the stock rows it writes

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.demand_params = self.shop.demand_params(self.scope, query)
        shop = self.shop
        with shop.classified("reading the orders that hold stock"), self.conn.cursor() as cur:
            temporary_table(cur, "stocksync_demand", _DEMAND_COLUMNS, shop.text_charset(cur))
            demand = shop.sql("select_demand", items=shop.items(ordered=True), order_filter="")
            cur.execute("INSERT INTO stocksync_demand (sku, units) " + demand, self.demand_params)
            cur.execute("SELECT sku, units FROM stocksync_demand ORDER BY sku")
            rows = cur.fetchall()
        for sku, units in rows:
            sink.write_row((sku, int(units), 0))
        return len(rows)

    def read_stock(self, skus: Sequence[str]) -> list[StockRow]:
        return self.shop.stock_rows(self.conn, self.scope, skus)

    def write_stock(self, writes: Iterable[StockWrite]) -> list[str]:
        shop = self.shop
        params = self.scope.params()
        planned = shop.items(planned=True)
        with shop.classified("writing stock_available"), self.conn.cursor() as cur:
            if not load_plan(cur, _PLAN_COLUMNS, ((w.sku, int(w.new_qty), int(w.wms_seq)) for w in writes),
                             shop.text_charset(cur)):
                return []
            cur.execute(shop.sql("update_plan_items", items=planned))
            self.rows_locked_at = time.perf_counter()
            cur.execute(shop.sql("lock_stock"), params)
            demand_params = self.demand_params
            if demand_params is None and self.upto_order is not None:
                # no demand read: `new` took no order off; the orders of the session's start are the
                # baseline, so only those placed since are taken off below
                demand_params = {**shop.every_order_params(self.scope), "upto_order": self.upto_order}
                temporary_table(cur, "stocksync_demand", _DEMAND_COLUMNS, shop.text_charset(cur))
                cur.execute("INSERT INTO stocksync_demand (sku, units) "
                            + shop.sql("select_demand", items=planned, order_filter=_ORDERS_UPTO), demand_params)
            if demand_params is not None:  # `new` took the demand read off: read it again, locked
                temporary_table(cur, "stocksync_demand_now", _DEMAND_COLUMNS, shop.text_charset(cur))
                cur.execute("INSERT INTO stocksync_demand_now (sku, units) "
                            + shop.sql("select_demand", items=planned, order_filter=""), demand_params)
                cur.execute(shop.sql("update_plan_demand"))
            cur.execute(shop.sql("update_plan_targets"), params)
            cur.execute(shop.sql("update_stock_rows"), params)
            cur.execute(shop.sql("insert_stock_rows"), params)
            temporary_table(cur, "stocksync_totals", _TOTALS_COLUMNS, shop.text_charset(cur))
            cur.execute(shop.sql("sum_product_totals"), params)
            cur.execute(shop.sql("update_product_totals"), params)
            cur.execute(shop.sql("insert_product_totals"), params)
            cur.execute(shop.sql("upsert_sku_state"), params)
            cur.execute("SELECT sku FROM stocksync_plan WHERE write_it ORDER BY sku")
            return [sku for (sku,) in cur.fetchall()]


class _Live:
    """The live write-back of one SKU (port.LiveSession): its stock row and its product's row locked
    as order validation locks them, the write the apply's own (row, product total, sequence)."""

    def __init__(self, shop: PrestaShopShop, conn: Any, scope: _Scope, sku: str) -> None:
        self.shop = shop
        self.conn = conn
        self.scope = scope
        self.sku = sku
        found = shop.stock_rows(conn, scope, [sku])
        self._current = found[0] if found else None

    @property
    def current(self) -> StockRow | None:
        return self._current

    def demand(self, query: DemandQuery) -> DemandRow:
        rows = self.shop.demand_rows(self.conn, self.scope, query, self.sku)
        return DemandRow(self.sku, sum(int(units) for _sku, units in rows), 0)

    def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        if self._current is None or self._current.wms_seq >= wms_seq:
            return None
        if not _Apply(self.shop, self.conn, self.scope).write_stock([StockWrite(self.sku, new_qty, wms_seq)]):
            return None
        found = self.shop.stock_rows(self.conn, self.scope, [self.sku])
        self._current = found[0] if found else None
        return self._current


_ORDERS_UPTO = "AND o.id_order <= %(upto_order)s"


class PrestaShopShop(MySQLShop):
    """The `prestashop` adapter. `dsn`: mysql://USER:PASSWORD@HOST:PORT/DATABASE. Options:
    `table_prefix` (_DB_PREFIX_, `ps_` by default), `id_shop` (the shop the WMS stocks),
    `not_reserving_states` (order state ids that hold no stock besides shipped states: the store's
    PS_OS_ERROR and PS_OS_CANCELED, 8 and 6 by default), `order_statuses` (stocksync's status names
    -> order state ids, on top of `DEFAULT_ORDER_STATUSES`), `time_zone` (the shop's PS_TIMEZONE:
    PrestaShop stores `orders.date_add` in it), `id_lang` (the language of the storefront's option
    names and values)."""

    sku_column = ("product_attribute", "reference")

    platform = PLATFORM

    def __init__(self, dsn: str, *, table_prefix: str = "ps_", id_shop: int = 1,
                 not_reserving_states: Sequence[int] = DEFAULT_NOT_RESERVING,
                 order_statuses: Mapping[str, Sequence[int]] | None = None, time_zone: str = "UTC",
                 id_lang: int = 1) -> None:
        super().__init__(dsn, PLATFORM, table_prefix)
        if int(id_lang) < 1:
            raise ValueError(f"prestashop id_lang must be a language id (>= 1, International > Languages); "
                             f"got {id_lang}")
        self.id_lang = int(id_lang)
        self.order_statuses = status_map(PLATFORM, DEFAULT_ORDER_STATUSES, order_statuses, _state_id)
        try:
            self.time_zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"prestashop time_zone {time_zone!r}: the shop's PS_TIMEZONE, an IANA zone such as "
                             "Europe/Paris") from exc
        if int(id_shop) < 1:
            raise ValueError(f"prestashop id_shop must be a shop id (>= 1); got {id_shop}")
        self.id_shop = int(id_shop)
        states = tuple(int(state) for state in not_reserving_states)
        if not states:
            raise ValueError("prestashop not_reserving_states: list the error and cancelled state ids (e.g. 8, 6)")
        self.not_reserving = states

    def scope(self, conn: Any) -> _Scope:
        with self.classified("reading the shop and its group"), conn.cursor() as cur:
            cur.execute(self.sql("select_scope"), {"id_shop": self.id_shop})
            found = cur.fetchone()
        if found is None:
            raise ShopContractError(f"prestashop: no shop with id_shop {self.id_shop}; set prestashop id_shop to "
                                    "the shop the WMS stocks (Advanced Parameters > Multistore)")
        group, share_stock, group_shops = found
        shops = [int(s) for s in str(group_shops or self.id_shop).split(",")]
        return _Scope(self.id_shop, int(group), bool(share_stock), shops)

    def item_halves(self, planned: bool = False, ordered: bool = False) -> tuple[str, str]:
        """items_combinations.sql and items_products.sql: every SKU, only those of stocksync_plan
        (`planned`), or only those in lines of orders that hold stock (`ordered`: the demand's,
        bound by its parameters). The filters restrict the items read, never which item comes first."""
        if ordered:
            pa_filter, product_filter = self.sql("holding_combination_refs"), self.sql("holding_product_refs")
        elif planned:
            pa_filter = _PLANNED_REFERENCES.format(column="pa.reference")
            product_filter = _PLANNED_REFERENCES.format(column="prod.reference")
        else:
            pa_filter = product_filter = ""
        combinations = self.sql("items_combinations", pa_filter=pa_filter, earlier_items=self.sql(
            "earlier_items", reference="pa.reference", id_product="pa.id_product",
            id_product_attribute="pa.id_product_attribute"))
        products = self.sql("items_products", product_filter=product_filter, earlier_items=self.sql(
            "earlier_items", reference="prod.reference", id_product="prod.id_product", id_product_attribute="0"))
        return combinations, products

    def items(self, planned: bool = False, ordered: bool = False) -> str:
        """items.sql over both halves (item_halves): the derived table of the filtered reads."""
        combinations, products = self.item_halves(planned, ordered)
        return self.sql("items", combinations=combinations, products=products)

    def over_items(self, name: str, **identifiers: str) -> str:
        """The statement `name`, written over one half of the items (`{items}`), over every item:
        items.sql filled with it over each half, a top-level UNION ALL (streamed, no temporary table)."""
        combinations, products = self.item_halves()
        return self.sql("items", combinations=self.sql(name, items=combinations, **identifiers),
                        products=self.sql(name, items=products, **identifiers))

    def every_order_params(self, scope: _Scope) -> dict[str, Any]:
        """The demand statement's parameters counting every order that holds stock, acknowledged or not."""
        return {**scope.params(), "include_orders": True, "watermark": datetime(1970, 1, 1),
                "not_reserving": self.not_reserving}

    def demand_params(self, scope: _Scope, query: DemandQuery) -> dict[str, Any]:
        return {**scope.params(), "include_orders": bool(query.include_orders),
                "watermark": query.watermark.astimezone(UTC).replace(tzinfo=None),
                "not_reserving": self.not_reserving}

    def demand_rows(self, conn: Any, scope: _Scope, query: DemandQuery, sku: str | None = None) -> list[Any]:
        """(sku, units) of the orders that hold stock and the WMS had not counted; one SKU or all."""
        params = {**self.demand_params(scope, query), "sku": sku}
        text = self.sql("select_demand", items=self.items(ordered=True),
                        order_filter="AND items.sku = %(sku)s" if sku is not None else "")
        with self.classified("reading the orders that hold stock"), conn.cursor() as cur:
            cur.execute(text, params)
            return list(cur.fetchall())

    def demand_into(self, conn: Any, scope: _Scope, query: DemandQuery, sink: StagingSink) -> int:
        rows = 0
        for sku, units in self.demand_rows(conn, scope, query):
            sink.write_row((sku, int(units), 0))
            rows += 1
        return rows

    def variant_params(self) -> dict[str, Any]:
        return {"id_lang": self.id_lang}

    # -- the order push (the statements' shops: the scope's) ------------------------------------
    def order_params(self, conn: Any) -> dict[str, Any]:
        return {"shops": self.scope(conn).order_shops}

    def order_time(self, stored: datetime) -> datetime:
        return stored.replace(tzinfo=self.time_zone).astimezone(UTC)

    def stock_sql(self, some_skus: bool) -> str:
        """select_stock.sql over every SKU, or over the bound `skus` only."""
        return self.over_items("select_stock", sku_filter="AND items.sku IN %(skus)s" if some_skus else "")

    def stock_rows(self, conn: Any, scope: _Scope, skus: Sequence[str] | None) -> list[StockRow]:
        if skus is not None and not skus:
            return []
        text = self.stock_sql(skus is not None)
        with self.classified("reading stock_available"), conn.cursor() as cur:
            cur.execute(text, {**scope.params(), "skus": tuple(skus or ())})
            return [StockRow(sku, int(qty), int(seq)) for sku, qty, seq in cur.fetchall()]

    # -- bulk reads -----------------------------------------------------------------------------
    def stream_catalog(self, sink: StagingSink) -> int:
        catalog = self.over_items("select_catalog")
        return self.stream_catalog_rows(sink, "reading the catalog", catalog)

    def stream_stock(self, sink: StagingSink) -> int:
        self.ensure_migrated()
        with self.transaction() as conn:
            params = {**self.scope(conn).params(), "skus": ()}
            with self.classified("reading stock_available"):
                return stream_rows(conn, self.stock_sql(False), params, sink, stock_row)

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.ensure_migrated()
        with self.transaction() as conn:
            return self.demand_into(conn, self.scope(conn), query, sink)

    # -- the apply ------------------------------------------------------------------------------
    @contextmanager
    def apply_session(self, *, lock_timeout_seconds: float) -> Iterator[_Apply]:
        wait = lock_wait_seconds(lock_timeout_seconds)
        self.ensure_migrated()
        with self.transaction() as conn:
            scope = self.scope(conn)
            with self.classified("locking stock_available"), conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
                self.hold_back_order_push(cur)
                # nothing of the stock is locked yet: the write locks the rows it writes
                cur.execute(f"SELECT COALESCE(MAX(id_order), 0) FROM {self.prefix}orders")
                (upto_order,) = cur.fetchone()
            yield _Apply(self, conn, scope, int(upto_order))

    @contextmanager
    def live_session(self, sku: str, *, lock_timeout_seconds: float) -> Iterator[_Live]:
        wait = lock_wait_seconds(lock_timeout_seconds)
        self.ensure_migrated()
        with self.transaction() as conn:
            scope = self.scope(conn)
            with self.classified("locking one stock_available row"), conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (wait,))
                cur.execute(self.over_items("select_item"), {"sku": sku})
                item = cur.fetchone()
                if item is not None:
                    # the SKU's own row first, then its product's row, as order validation updates them
                    for attribute in dict.fromkeys((int(item[1]), 0)):
                        cur.execute(self.sql("lock_stock_row"), {**scope.params(), "id_product": int(item[0]),
                                                                  "id_product_attribute": attribute})
            yield _Live(self, conn, scope, sku)

    def sellable(self, sku: str) -> Sellable | None:
        with self.transaction() as conn:
            with self.classified("reading the catalog"), conn.cursor() as cur:
                cur.execute(self.over_items("select_item"), {"sku": sku})
                found = cur.fetchone()
            if found is None:
                return None
            rows = self.stock_rows(conn, self.scope(conn), [sku])
        row = rows[0] if rows else None
        return Sellable(sku, bool(found[2]), row.qty if row else None, row.wms_seq if row else None)


def _state_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValueError(f"an order state id (orders.current_state) is a whole number; got {value!r}")
    return int(value)


def acknowledge_orders(shop: PrestaShopShop, acknowledged: dict[int, datetime]) -> None:
    """Record when the WMS counted orders (by id_order; a first time is kept)."""
    shop.ensure_migrated()
    rows = [(int(id_order), at.astimezone(UTC).replace(tzinfo=None)) for id_order, at in acknowledged.items()]
    with shop.transaction() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT IGNORE INTO {shop.prefix}stocksync_order_ack (id_order, acknowledged_at) "
                        "VALUES (%s, %s)", rows)
