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
per request. Each write-back is recorded in stocksync.sku_audit under the day's run record
(dag_id `availability_live`).

The answer is the shop's number after the transaction: the written figure, or (when the shop was
already at that WMS state, or newer) the shop's own number: what checkout accepts either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from include.stocksync.availability.settings import AvailabilitySettings
from include.stocksync.availability.wms import WmsItem
from include.stocksync.store.db import query

DAG_ID = "availability_live"


def run_id_for(day: datetime) -> str:
    return f"{DAG_ID}__{day.astimezone(UTC).date().isoformat()}"


def outcome_query() -> str:
    """stocksync/select_sku_outcomes.sql for the one live item, composed from the shop's files."""
    demand = sql.SQL("(") + query("availability/select_sku_demand",
                                  demand=query("shop/select_in_window_demand")) + sql.SQL(")")
    counts = sql.SQL("(") + query("availability/select_live_counts") + sql.SQL(")")
    composed = query("stocksync/select_sku_outcomes", counts=counts, demand=demand,
                     current_stock=query("shop/select_current_stock"), catalog=query("shop/select_catalog_skus"))
    return composed.as_string(None)


@dataclass(frozen=True)
class LiveResult:
    qty: int  # the shop's number after the transaction
    written: bool
    outcome: str | None = None  # the audit outcome of a write (changed, unchanged, clamped)
    old_qty: int | None = None
    adjustment: int | None = None


class LiveWriter:
    def __init__(self, settings: AvailabilitySettings) -> None:
        self.settings = settings
        self.q_lock = query("shop/lock_stock_row").as_string(None)
        self.q_outcome = outcome_query()
        self.q_update = query("shop/update_stock_live").as_string(None)
        self.q_run = query("availability/upsert_live_run").as_string(None)
        self.q_audit = query("availability/upsert_live_audit").as_string(None)
        self.run_settings = Jsonb({k: v for k, v in settings.public().items()
                                   if k in ("live_mode", "wms_url", "wms_budget_ms", "unsent_statuses",
                                            "unsent_order_cutoff_hours", "db_budget_ms")})

    def demand_params(self, item: WmsItem) -> dict[str, Any]:
        """Parameters of shop/select_in_window_demand.sql (a superset: unused names are ignored)."""
        return {
            "include_orders": True,
            "unsent_cutoff_seconds": self.settings.unsent_order_cutoff_hours * 3600,
            "unsent_statuses": list(self.settings.unsent_statuses),
            "watermark_source": "wms",
            "watermark": item.taken_at,
            "include_carts": False,
            "cart_cutoff_seconds": 0,
        }

    async def write_back(self, conn: psycopg.AsyncConnection[Any], item: WmsItem) -> LiveResult | None:
        """Apply `item` to the shop if newer. None: the SKU has no stock row (nothing to write)."""
        async with conn.transaction():
            locked = await (await conn.execute(self.q_lock, {"sku": item.sku})).fetchone()
            if locked is None:
                return None
            shop_qty, shop_seq = int(locked[0]), int(locked[1])
            if item.seq <= shop_seq:
                return LiveResult(qty=shop_qty, written=False)
            params = {"sku": item.sku, "wms_available": item.available, "wms_seq": item.seq,
                      **self.demand_params(item)}
            row = await (await conn.execute(self.q_outcome, params)).fetchone()
            if row is None or row[7] not in ("changed", "unchanged", "clamped") or row[6] is None:
                return LiveResult(qty=shop_qty, written=False)
            _, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome = row
            updated = await (await conn.execute(self.q_update, {"sku": item.sku, "new_qty": int(new_qty),
                                                                "wms_seq": item.seq})).fetchone()
            if updated is None:  # cannot happen under the lock; never write an audit row for no write
                return LiveResult(qty=shop_qty, written=False)
            run_id = run_id_for(datetime.now(UTC))
            run = await (await conn.execute(self.q_run, {"run_id": run_id, "settings": self.run_settings,
                                                         "outcome": outcome})).fetchone()
            if run is None:
                raise RuntimeError(f"run id {run_id} belongs to another DAG; live write-back not recorded")
            await conn.execute(self.q_audit, {
                "run_id": run_id, "sku": item.sku, "snapshot_id": f"live:{item.taken_at.isoformat()}",
                "old_qty": old_qty, "old_seq": old_seq, "wms_available": wms_available, "wms_seq": wms_seq,
                "adjustment": adjustment, "new_qty": new_qty, "outcome": outcome})
            return LiveResult(qty=int(updated[0]), written=True, outcome=outcome, old_qty=int(old_qty),
                              adjustment=int(adjustment))
