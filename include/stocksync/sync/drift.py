"""Drift, night by night: what a full sync corrects (docs/order-push-and-intraday.md).

With the order push and the intraday sync keeping the shop in line all day, whatever a full sync
still has to change is drift: WMS changes that never reached the shop (a feed gap, changes after
the last intraday run), orders lost or counted twice, writes from elsewhere. Recording it tells
whether the loop works; a night far above the trend is worth a look.

`recorder()` gives `apply_plan` a hook that runs inside the apply transaction, after the audit
rows are final (recomputed under the stock lock) and before the write: it records the night's
totals in `stocksync.drift_history`, judged against the median of the nights before (the per-SKU
figures are the audit rows themselves, named by the view `stocksync.sku_drift`). The alert is
sent by the DAG task after the apply (`alert_payload()`), never from inside the transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.config.settings import Settings
from include.stocksync.store.db import connect, execute_file, query

log = logging.getLogger(__name__)


def judge(skus_off: int, trend: float | None, nights: int, settings: Settings) -> str | None:
    """Why this night's drift is far above the trend, or None."""
    loop = settings.loop
    if nights < loop.drift_trend_min_nights or trend is None:
        return None
    threshold = loop.drift_alert_factor * max(trend, 1.0)
    if skus_off > threshold and skus_off > loop.drift_alert_min_skus:
        return (f"{skus_off} SKUs were off, more than {loop.drift_alert_factor:g} x the median of the "
                f"{nights} nights before ({trend:g}) and more than drift_alert_min_skus "
                f"({loop.drift_alert_min_skus})")
    return None


def record(conn: psycopg.Connection, *, run_id: str, dag_id: str, settings: Settings,
           checked: int | None = None) -> dict[str, Any]:
    """The run's drift totals and their verdict, in the caller's transaction. `checked`: the SKUs
    the apply compared (changed, clamped, unchanged), from its counts: the audit (migration 0007) leaves
    unchanged SKUs without demand out, so counting audit rows would miss them."""
    with conn.cursor(row_factory=dict_row) as cur:
        totals = cur.execute(query("loop/select_drift_totals"),
                             {"run_id": run_id, "checked": checked, "zone": settings.shop_timezone}).fetchone()
        assert totals is not None
        trend = cur.execute(query("loop/select_drift_trend"), {
            "dag_id": dag_id, "night": totals["night"], "nights": settings.loop.drift_trend_nights,
            "run_id": run_id}).fetchone()
    median = float(trend["median_skus_off"]) if trend and trend["median_skus_off"] is not None else None
    nights = int(trend["nights"]) if trend else 0
    reason = judge(int(totals["skus_off"]), median, nights, settings)
    row = {"run_id": run_id, "dag_id": dag_id, **totals, "trend_skus_off": median, "alert": reason is not None,
           "alert_reason": reason}
    execute_file(conn, "loop/upsert_drift_history", row)
    log.info("drift corrected by %s: %s", run_id, row)
    return row


def recorder(*, run_id: str, dag_id: str, settings: Settings) -> Callable[[psycopg.Connection, Counter[str]], None]:
    """The `before_write` hook of `apply_plan` for a full sync."""

    def hook(conn: psycopg.Connection, counts: Counter[str]) -> None:
        record(conn, run_id=run_id, dag_id=dag_id, settings=settings,
               checked=sum(counts.get(o, 0) for o in ("changed", "clamped", "unchanged")))

    return hook


def recorded(dsn: str, run_id: str) -> dict[str, Any] | None:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("loop/select_drift_history"), {"run_id": run_id}).fetchone()


def nights(dsn: str, dag_id: str = "inventory_nightly_sync", count: int = 30) -> list[dict[str, Any]]:
    """The last `count` nights of drift, newest first (`loop/select_drift_nights.sql`)."""
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("loop/select_drift_nights"),
                           {"dag_id": dag_id, "nights": count}).fetchall()


def alert_payload(row: dict[str, Any]) -> dict[str, Any] | None:
    """The alert of a night far above the trend, or None."""
    if not row or not row.get("alert"):
        return None
    return {
        "text": f"stocksync: drift far above the trend in {row['dag_id']} run {row['run_id']} "
                f"(night {row['night']}): {row['alert_reason']}; units over-stated {row['units_over']}, "
                f"under-stated {row['units_under']}",
        "kind": "drift", "dag_id": row["dag_id"], "run_id": row["run_id"], "night": str(row["night"]),
        "skus_off": row["skus_off"], "units_over": row["units_over"], "units_under": row["units_under"],
        "trend_skus_off": row["trend_skus_off"],
    }
