"""The names of a run's copies of the shop's catalog and stock in stocksync's own schema
(`stocksync.shop_catalog_<run key>`, `stocksync.shop_stock_<run key>`), and the statements that
read them where the shop's own statements used to be embedded. sync/shop_mirror.py fills them
through the shop port; the report and the alerts read them (the SKUs a check flagged).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from include.stocksync.store.db import STAGING_SCHEMA, run_key

CATALOG_PREFIX = "shop_catalog_"
STOCK_PREFIX = "shop_stock_"
PLAN_PREFIX = "plan_"  # merge.plan_table


@dataclass(frozen=True)
class ShopMirror:
    """A run's copies of the shop's catalog and stock in stocksync's schema, named by the run's key
    (the same key as its plan table, `plan_<key>`)."""

    key: str
    # True: both are views reading the shop in place (the shop is stocksync's own database), not copies
    in_place: bool = False

    @classmethod
    def of_run(cls, run_id: str) -> ShopMirror:
        return cls(run_key(run_id))

    @classmethod
    def of_plan(cls, plan_table: str) -> ShopMirror:
        """The copies of the run whose plan is `plan_table` (`plan_<run key>`)."""
        if not plan_table.startswith(PLAN_PREFIX):
            raise ValueError(f"not a plan table: {plan_table!r} (plan_<run key>)")
        return cls(plan_table.removeprefix(PLAN_PREFIX))

    @property
    def catalog_table(self) -> sql.Identifier:
        return sql.Identifier(STAGING_SCHEMA, CATALOG_PREFIX + self.key)

    @property
    def stock_table(self) -> sql.Identifier:
        return sql.Identifier(STAGING_SCHEMA, STOCK_PREFIX + self.key)

    def catalog(self) -> sql.Composed:
        """`(sku, enabled)`: what `shop/select_catalog_skus` returned."""
        return sql.SQL("SELECT sku, enabled FROM {}").format(self.catalog_table)

    def enabled_skus(self) -> sql.Composed:
        """`(sku)` of the products on sale: what `shop/select_enabled_skus` returned."""
        return sql.SQL("SELECT sku FROM {} WHERE enabled").format(self.catalog_table)

    def current_stock(self) -> sql.Composed:
        """`(sku, qty, wms_seq)`: what `shop/select_current_stock` returned."""
        return sql.SQL("SELECT sku, qty, wms_seq FROM {}").format(self.stock_table)
