"""Live mode's write-back: the WMS's figure for one SKU, made the shop's number.

The figure follows the nightly sync's rules for one SKU (stocksync/select_sku_outcomes.sql with
shop/select_in_window_demand.sql): `max(0, available - units of in-window orders the WMS had not
counted)`, where an order is uncounted when its status is one of `unsent_statuses`, it is younger
than `unsent_order_cutoff_hours`, and the WMS had not acknowledged it when it answered (`taken_at`
is the watermark).

Why under a row lock, in one transaction: checkout (shop.place_order) locks the stock row before
it takes units. Holding that lock while counting the uncounted orders and writing means an order
is either committed before our count (and counted) or waits for our write (and takes its units
from the new number): the write can never put back units a concurrent order already took. The
write happens only when the WMS's sequence is newer than the one the shop last applied, so a
stale read cannot overwrite a newer sync, and a busy SKU is written once per WMS change, not once
per request.

Two databases: the shop (reached through the reference shop's live lookups,
shop/postgres/live.py, or a MySQL-family adapter's, shop/mysql_live.py) and stocksync's own (the
formula, the day's run record under dag_id `availability_live`, the stocksync.sku_audit row).
Nothing joins across them: the shop gives the locked row and the SKU's demand; the formula
(stocksync/select_sku_outcomes.sql, the nightly's one definition) runs on stocksync's connection
over those values as bound parameters. stocksync's transaction opens first and commits last: the
run record and the audit row are written before the shop's write commits, so the shop is never
written when stocksync cannot record it (its database down: the answer falls back to the shop's
number, nothing written); only a failure of stocksync's commit itself, after the shop's, could
leave a write without its audit row (logged).

The answer is the shop's number after the transaction: the written figure, or (when the shop was
already at that WMS state, or newer) the shop's own number: what checkout accepts either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from psycopg import sql
from psycopg.types.json import Jsonb

from include.stocksync.availability.settings import AvailabilitySettings
from include.stocksync.availability.wms import WmsItem
from include.stocksync.shop.mysql_live import MySQLLiveShop
from include.stocksync.shop.port import DemandQuery
from include.stocksync.shop.postgres.live import Connect, PostgresLiveShop
from include.stocksync.store.db import query

DAG_ID = "availability_live"


def run_id_for(day: datetime) -> str:
    return f"{DAG_ID}__{day.astimezone(UTC).date().isoformat()}"


def outcome_query() -> str:
    """stocksync/select_sku_outcomes.sql for the one live item, every relation a row of bound values
    (the WMS item, the shop's locked row, the SKU's demand under the lock): no table is read."""
    def relation(name: str) -> sql.Composed:
        return sql.SQL("(") + query(name) + sql.SQL(")")

    composed = query("stocksync/select_sku_outcomes", counts=relation("availability/select_live_counts"),
                     demand=relation("availability/select_live_demand"),
                     current_stock=query("availability/select_live_stock"),
                     catalog=query("availability/select_live_catalog"))
    return composed.as_string(None)


@dataclass(frozen=True)
class LiveResult:
    qty: int  # the shop's number after the transaction
    written: bool
    outcome: str | None = None  # the audit outcome of a write (changed, unchanged, clamped)
    old_qty: int | None = None
    adjustment: int | None = None


class LiveWriter:
    def __init__(self, settings: AvailabilitySettings, shop: PostgresLiveShop | MySQLLiveShop,
                 stocksync: Connect) -> None:
        """`stocksync`: connections to stocksync's own database (the service's pool lends them)."""
        self.settings = settings
        self.shop = shop
        self.stocksync = stocksync
        self.q_outcome = outcome_query()
        self.q_run = query("availability/upsert_live_run").as_string(None)
        self.q_audit = query("availability/upsert_live_audit").as_string(None)
        self.run_settings = Jsonb({k: v for k, v in settings.public().items()
                                   if k in ("live_mode", "wms_url", "wms_budget_ms", "unsent_statuses",
                                            "unsent_order_cutoff_hours", "db_budget_ms")})

    def demand_query(self, item: WmsItem) -> DemandQuery:
        """The nightly's demand rule for live mode: unsent orders only (no carts), the WMS's answer
        time as the watermark."""
        return DemandQuery(include_orders=True, unsent_cutoff_seconds=self.settings.unsent_order_cutoff_hours * 3600,
                           unsent_statuses=tuple(self.settings.unsent_statuses), watermark=item.taken_at,
                           watermark_source="wms", include_carts=False, cart_cutoff_seconds=0)

    async def write_back(self, item: WmsItem) -> LiveResult | None:
        """Apply `item` to the shop if newer. None: the SKU has no stock row (nothing to write)."""
        async with self.stocksync() as store, store.transaction():
            async with self.shop.live_session(item.sku) as session:
                locked = session.current
                if locked is None:
                    return None
                if item.seq <= locked.wms_seq:
                    return LiveResult(qty=locked.qty, written=False)
                demand = await session.demand(self.demand_query(item))
                row = await (await store.execute(self.q_outcome, {
                    "sku": item.sku, "wms_available": item.available, "wms_seq": item.seq,
                    "old_qty": locked.qty, "old_seq": locked.wms_seq,
                    "unsent_qty": demand.unsent_qty, "cart_qty": demand.cart_qty})).fetchone()
                if row is None or row[7] not in ("changed", "unchanged", "clamped") or row[6] is None:
                    return LiveResult(qty=locked.qty, written=False)
                _, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome = row
                written = await session.write(int(new_qty), item.seq)
                if written is None:  # cannot happen under the lock; never write an audit row for no write
                    return LiveResult(qty=locked.qty, written=False)
                run_id = run_id_for(datetime.now(UTC))
                run = await (await store.execute(self.q_run, {"run_id": run_id, "settings": self.run_settings,
                                                              "outcome": outcome})).fetchone()
                if run is None:
                    raise RuntimeError(f"run id {run_id} belongs to another DAG; live write-back not recorded")
                await store.execute(self.q_audit, {
                    "run_id": run_id, "sku": item.sku, "snapshot_id": f"live:{item.taken_at.isoformat()}",
                    "old_qty": old_qty, "old_seq": old_seq, "wms_available": wms_available, "wms_seq": wms_seq,
                    "adjustment": adjustment, "new_qty": new_qty, "outcome": outcome})
            # the shop's write is committed; stocksync's record commits as the outer block ends
            return LiveResult(qty=written.qty, written=True, outcome=outcome, old_qty=int(old_qty),
                              adjustment=int(adjustment))
