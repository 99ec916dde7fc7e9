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

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from include.stocksync.shop.mysql_family import MySQLShop, load_plan
from include.stocksync.shop.port import (
    DemandQuery,
    Sellable,
    ShopContractError,
    StagingSink,
    StockRow,
    StockWrite,
)

PLATFORM = "prestashop"
# PrestaShop's default "Payment error" (PS_OS_ERROR) and "Canceled" (PS_OS_CANCELED) states
DEFAULT_NOT_RESERVING = (8, 6)
_PLAN_TABLE = """CREATE TEMPORARY TABLE stocksync_plan (
  sku varchar(64) NOT NULL PRIMARY KEY, new_qty int NOT NULL, wms_seq bigint NOT NULL,
  id_product int unsigned NULL, id_product_attribute int unsigned NULL,
  write_it tinyint(1) NOT NULL DEFAULT 0, KEY (id_product, id_product_attribute)) ENGINE=InnoDB"""
# `items.sql` restricted to the SKUs of stocksync_plan (indexed lookups by reference, not the catalog)
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

    def __init__(self, shop: PrestaShopShop, conn: Any, scope: _Scope) -> None:
        self.shop = shop
        self.conn = conn
        self.scope = scope
        self.demand_params: dict[str, Any] | None = None

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.demand_params = self.shop.demand_params(self.scope, query)
        shop = self.shop
        with shop.classified("reading the orders that hold stock"), self.conn.cursor() as cur:
            _demand_table(cur, "stocksync_demand")
            demand = shop.sql("select_demand", items=shop.items(ordered=True))
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
            if not load_plan(cur, _PLAN_TABLE, ((w.sku, int(w.new_qty), int(w.wms_seq)) for w in writes)):
                return []
            cur.execute(shop.sql("update_plan_items", items=planned))
            cur.execute(shop.sql("lock_stock"), params)
            if self.demand_params is not None:  # `new` took the demand read off: read it again, locked
                _demand_table(cur, "stocksync_demand_now")
                cur.execute("INSERT INTO stocksync_demand_now (sku, units) "
                            + shop.sql("select_demand", items=planned), self.demand_params)
                cur.execute(shop.sql("update_plan_demand"))
            cur.execute(shop.sql("update_plan_targets"), params)
            cur.execute(shop.sql("upsert_stock_rows"), params)
            cur.execute(shop.sql("upsert_product_totals"), params)
            cur.execute(shop.sql("upsert_sku_state"), params)
            cur.execute("SELECT sku FROM stocksync_plan WHERE write_it ORDER BY sku")
            return [sku for (sku,) in cur.fetchall()]


def _demand_table(cur: Any, name: str) -> None:
    cur.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}")
    cur.execute(f"CREATE TEMPORARY TABLE {name} (sku varchar(64) NOT NULL PRIMARY KEY, units bigint NOT NULL) "
                "ENGINE=InnoDB")


class PrestaShopShop(MySQLShop):
    """The `prestashop` adapter. `dsn`: mysql://USER:PASSWORD@HOST:PORT/DATABASE. Options:
    `table_prefix` (_DB_PREFIX_, `ps_` by default), `id_shop` (the shop the WMS stocks),
    `not_reserving_states` (order state ids that hold no stock besides shipped states: the store's
    PS_OS_ERROR and PS_OS_CANCELED, 8 and 6 by default)."""

    platform = PLATFORM

    def __init__(self, dsn: str, *, table_prefix: str = "ps_", id_shop: int = 1,
                 not_reserving_states: Sequence[int] = DEFAULT_NOT_RESERVING) -> None:
        super().__init__(dsn, PLATFORM, table_prefix)
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

    def items(self, planned: bool = False, ordered: bool = False) -> str:
        """items.sql: every SKU, only those of stocksync_plan (`planned`), or only those in lines of
        orders that hold stock (`ordered`: the demand's, bound by its parameters)."""
        if ordered:
            return self.sql("items", pa_filter=self.sql("holding_combination_refs"),
                            product_filter=self.sql("holding_product_refs"))
        if not planned:
            return self.sql("items", pa_filter="", product_filter="")
        return self.sql("items", pa_filter=_PLANNED_REFERENCES.format(column="pa.reference"),
                        product_filter=_PLANNED_REFERENCES.format(column="prod.reference"))

    def demand_params(self, scope: _Scope, query: DemandQuery) -> dict[str, Any]:
        return {**scope.params(), "include_orders": bool(query.include_orders),
                "watermark": query.watermark.astimezone(UTC).replace(tzinfo=None),
                "not_reserving": self.not_reserving}

    def demand_into(self, conn: Any, scope: _Scope, query: DemandQuery, sink: StagingSink) -> int:
        params = self.demand_params(scope, query)
        rows = 0
        with self.classified("reading the orders that hold stock"), conn.cursor() as cur:
            cur.execute(self.sql("select_demand", items=self.items(ordered=True)), params)
            for sku, units in cur.fetchall():
                sink.write_row((sku, int(units), 0))
                rows += 1
        return rows

    def stock_rows(self, conn: Any, scope: _Scope, skus: Sequence[str] | None) -> list[StockRow]:
        if skus is not None and not skus:
            return []
        text = self.sql("select_stock", items=self.items(),
                        sku_filter="AND items.sku IN %(skus)s" if skus is not None else "")
        with self.classified("reading stock_available"), conn.cursor() as cur:
            cur.execute(text, {**scope.params(), "skus": tuple(skus or ())})
            return [StockRow(sku, int(qty), int(seq)) for sku, qty, seq in cur.fetchall()]

    # -- bulk reads -----------------------------------------------------------------------------
    def stream_catalog(self, sink: StagingSink) -> int:
        catalog = self.sql("select_catalog", items=self.items())
        return self.stream_catalog_rows(sink, "reading the catalog", catalog)

    def stream_stock(self, sink: StagingSink) -> int:
        self.ensure_migrated()
        with self.transaction() as conn:
            stock = self.stock_rows(conn, self.scope(conn), None)
        for row in stock:
            sink.write_row((row.sku, row.qty, row.wms_seq))
        return len(stock)

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        self.ensure_migrated()
        with self.transaction() as conn:
            return self.demand_into(conn, self.scope(conn), query, sink)

    # -- the apply ------------------------------------------------------------------------------
    @contextmanager
    def apply_session(self, *, lock_timeout_seconds: float) -> Iterator[_Apply]:
        if not lock_timeout_seconds > 0:
            raise ValueError(f"lock_timeout_seconds must be > 0; got {lock_timeout_seconds}")
        self.ensure_migrated()
        with self.transaction() as conn:
            scope = self.scope(conn)
            with self.classified("setting the lock wait"), conn.cursor() as cur:
                # the write's row locks wait at most this long (whole seconds, at least 1)
                cur.execute("SET SESSION innodb_lock_wait_timeout = %s", (max(1, int(-(-lock_timeout_seconds // 1))),))
            yield _Apply(self, conn, scope)

    def sellable(self, sku: str) -> Sellable | None:
        with self.transaction() as conn:
            with self.classified("reading the catalog"), conn.cursor() as cur:
                cur.execute(self.sql("select_catalog", items=self.items()) + " WHERE items.sku = %(sku)s",
                            {"sku": sku})
                found = cur.fetchone()
            if found is None:
                return None
            rows = self.stock_rows(conn, self.scope(conn), [sku])
        row = rows[0] if rows else None
        return Sellable(sku, bool(found[1]), row.qty if row else None, row.wms_seq if row else None)


def acknowledge_orders(shop: PrestaShopShop, acknowledged: dict[int, datetime]) -> None:
    """Record when the WMS counted orders (by id_order; a first time is kept)."""
    shop.ensure_migrated()
    rows = [(int(id_order), at.astimezone(UTC).replace(tzinfo=None)) for id_order, at in acknowledged.items()]
    with shop.transaction() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT IGNORE INTO {shop.prefix}stocksync_order_ack (id_order, acknowledged_at) "
                        "VALUES (%s, %s)", rows)
