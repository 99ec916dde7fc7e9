"""The watchdog: `stocksync_watchdog`, every few minutes (`operations.watchdog_schedule`).

Three tasks, each on its own so one that fails or hangs does not stop the next:

1. `reap_dead_runs`: sync runs whose teardown never closed them, that have been silent past the
   heartbeat bound and of which Airflow has no task queued or up for retry are declared dead
   (`abandoned`, or closed with their applied result kept), their freezes released; freezes of
   runs that are closed or abandoned are released too. Each is alerted.
   A freeze that is not a sync run's (a manual maintenance freeze) is never touched.
2. `check_freezes`: any freeze (a manual one too) that has kept checkout closed for longer than
   `operations.freeze_alert_after_seconds` is alerted, once per freeze.
3. `retry_alerts`: the watchdog's own alerts are sent, then every alert still undelivered
   `alert_retry_after_seconds` after its last attempt is tried again (up to `alert_retry_max_attempts`).

The functions here are plain (DSN and settings in, a summary out): the DAG's tasks
(`airflow/watchdog_dag.py`) call them, and tests may too. The watchdog has no teardown, so its own
failures are alerted at once.
"""

from __future__ import annotations

import logging
from typing import Any

from include.stocksync.config.settings import Settings
from include.stocksync.ops import dead_runs, delivery
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.runs.uow import transaction
from include.stocksync.shop import freeze
from include.stocksync.shop.port import ShopPort
from include.stocksync.store.db import execute_file

log = logging.getLogger(__name__)

WATCHDOG_DAG_ID = lifecycle.WATCHDOG


def reap_dead_runs(dsn: str, settings: Settings, lookup: lifecycle.AirflowLookup | None = None,
                   shop: ShopPort | None = None) -> dict[str, Any]:
    """Declare dead runs dead and release orphaned freezes (see lifecycle.py), asking Airflow first
    (`lookup`) so a run whose lost task Airflow is about to retry is left alone; alert each. The
    runs found are listed by id (`run_id` of each warning): the DAG's task rewrites their reports.
    `shop`: the shop port (none: the reference shop in stocksync's database)."""
    with transaction(dsn) as conn:
        dead = lifecycle.reap_dead_runs(conn, settings, lookup=lookup, shop=shop)
        dead_runs.record_found(conn, settings, dead, found_by=WATCHDOG_DAG_ID, found_by_dag=WATCHDOG_DAG_ID,
                               task_id="reap_dead_runs", kind=delivery.RUN_ABANDONED)
        orphans = lifecycle.release_orphan_freezes(conn, settings, found_by=WATCHDOG_DAG_ID, lookup=lookup, shop=shop)
        dead_runs.record_found(conn, settings, orphans, found_by=WATCHDOG_DAG_ID, found_by_dag=WATCHDOG_DAG_ID,
                               task_id="reap_dead_runs", kind=delivery.ORPHANED_FREEZE)
        for found in (*dead, *orphans):
            log.warning("watchdog: %s: %s", found.run_id, found.note)
    return {"abandoned": [d.as_warning(delivery.RUN_ABANDONED) for d in dead],
            "orphaned_freezes": [o.as_warning(delivery.ORPHANED_FREEZE) for o in orphans]}


def check_freezes(dsn: str, settings: Settings, shop: ShopPort | None = None) -> dict[str, Any]:
    """Alert (once per freeze) every freeze that has kept checkout closed longer than the bound.
    `shop`: the shop port (none: the reference shop in stocksync's database)."""
    bound = settings.operations.freeze_alert_after_seconds
    alerted = []
    with transaction(dsn) as conn:
        row = execute_file(conn, "stocksync/select_clock").fetchone()
        assert row is not None
        now = row[0]
        for freeze_id, reason, _, set_by, set_at, expires_at in freeze.active_freezes(conn if shop is None else shop):
            age = (now - set_at).total_seconds()
            subject = f"freeze:{freeze_id}:{set_at.isoformat()}"  # a freeze id reused after a reset is another freeze
            if age <= bound or delivery.already_alerted(conn, delivery.FREEZE_OVERDUE, subject):
                continue
            owner = runs.run_owner(conn, set_by) if set_by else None
            whose = f"sync run {set_by} of {owner}" if owner else f"{set_by or 'nobody'} (not a sync run: left alone)"
            body = delivery.payload(
                kind=delivery.FREEZE_OVERDUE, dag_id=owner or WATCHDOG_DAG_ID, run_id=set_by or subject,
                task_id="check_freezes", error=f"freeze {freeze_id}: {reason}", freeze_id=freeze_id,
                text=f"stocksync: checkout has been closed for {age / 60:.0f} min by freeze {freeze_id}, set by "
                     f"{whose}; it expires at {expires_at.isoformat()}", freeze_seconds=round(age, 1))
            delivery.queue(conn, settings, body, queued_by=WATCHDOG_DAG_ID, subject=subject)
            alerted.append({"freeze_id": freeze_id, "set_by": set_by, "seconds": round(age, 1)})
    return {"overdue_freezes": alerted}


def retry_alerts(dsn: str, settings: Settings, shop: ShopPort | None = None) -> dict[str, Any]:
    """Send the watchdog's own alerts, then retry every alert still undelivered (`shop`: where a
    failure alert reads whether checkout is still closed; none: stocksync's database)."""
    budget = settings.operations.watchdog_timeout_seconds / 2  # leaves the task time to finish
    own = delivery.deliver(dsn, settings, run_id=WATCHDOG_DAG_ID, budget_seconds=budget / 2, shop=shop)
    retried = delivery.deliver(dsn, settings, run_id=None, budget_seconds=budget / 2, shop=shop)
    return {"sent": [(a.alert_id, a.kind, a.channel, a.delivered, a.error) for a in own],
            "retried": [(a.alert_id, a.kind, a.channel, a.delivered, a.error) for a in retried]}
