"""The watchdog (issue 12): `stocksync_watchdog`, every few minutes (`operations.watchdog_schedule`).

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

The functions here are plain (DSN and settings in, a summary out): the DAG's tasks call them, and
tests may too. The watchdog has no teardown, so its own failures are alerted at once.
"""

from __future__ import annotations

import logging
from typing import Any

from include.stocksync.config.settings import Settings
from include.stocksync.ops import delivery
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.shop import freeze
from include.stocksync.shop.port import ShopPort
from include.stocksync.store.db import connect, execute_file

log = logging.getLogger(__name__)

WATCHDOG_DAG_ID = lifecycle.WATCHDOG


def reap_dead_runs(dsn: str, settings: Settings,
                   lookup: lifecycle.AirflowLookup | None = lifecycle.airflow_view,
                   shop: ShopPort | None = None) -> dict[str, Any]:
    """Declare dead runs dead and release orphaned freezes (see lifecycle.py), asking Airflow first
    (`lookup`) so a run whose lost task Airflow is about to retry is left alone; alert each.
    `shop`: the shop port (none: the reference shop in stocksync's database)."""
    with connect(dsn) as conn:
        dead = lifecycle.reap_dead_runs(conn, settings, lookup=lookup, shop=shop)
        lifecycle.record_found(conn, settings, dead, found_by=WATCHDOG_DAG_ID, found_by_dag=WATCHDOG_DAG_ID,
                               task_id="reap_dead_runs", kind=delivery.RUN_ABANDONED)
        orphans = lifecycle.release_orphan_freezes(conn, settings, found_by=WATCHDOG_DAG_ID, lookup=lookup, shop=shop)
        lifecycle.record_found(conn, settings, orphans, found_by=WATCHDOG_DAG_ID, found_by_dag=WATCHDOG_DAG_ID,
                               task_id="reap_dead_runs", kind=delivery.ORPHANED_FREEZE)
        conn.commit()
        for found in (*dead, *orphans):
            log.warning("watchdog: %s: %s", found.run_id, found.note)
            _rewrite_report(conn, found.run_id)
    return {"abandoned": [d.as_warning(delivery.RUN_ABANDONED) for d in dead],
            "orphaned_freezes": [o.as_warning(delivery.ORPHANED_FREEZE) for o in orphans]}


def _rewrite_report(conn: Any, run_id: str) -> None:
    """The dead run's report says what happened to it (best effort: reports are off the critical path)."""
    from include.stocksync.ui.report import write_report

    try:
        write_report(conn, runs.spec_of(runs.read_run(conn, run_id)).settings, run_id)
    except Exception:
        conn.rollback()
        log.warning("watchdog: could not rewrite the report of run %s", run_id, exc_info=True)


def check_freezes(dsn: str, settings: Settings, shop: ShopPort | None = None) -> dict[str, Any]:
    """Alert (once per freeze) every freeze that has kept checkout closed longer than the bound.
    `shop`: the shop port (none: the reference shop in stocksync's database)."""
    bound = settings.operations.freeze_alert_after_seconds
    alerted = []
    with connect(dsn) as conn:
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
        conn.commit()
    return {"overdue_freezes": alerted}


def retry_alerts(dsn: str, settings: Settings) -> dict[str, Any]:
    """Send the watchdog's own alerts, then retry every alert still undelivered."""
    budget = settings.operations.watchdog_timeout_seconds / 2  # leaves the task time to finish
    own = delivery.deliver(dsn, settings, run_id=WATCHDOG_DAG_ID, budget_seconds=budget / 2)
    retried = delivery.deliver(dsn, settings, run_id=None, budget_seconds=budget / 2)
    return {"sent": [(a.alert_id, a.kind, a.channel, a.delivered, a.error) for a in own],
            "retried": [(a.alert_id, a.kind, a.channel, a.delivered, a.error) for a in retried]}


def build_watchdog_dag() -> Any:
    """The `stocksync_watchdog` DAG (dags/stocksync_watchdog.py)."""
    from airflow.sdk import dag, task

    from include.stocksync.airflow.dag_factory import (
        START_DATE,
        _fail_fast,
        _shop,
        _stocksync_dsn,
        bound_tasks,
        default_args,
    )
    from include.stocksync.config.settings import load_settings

    settings = load_settings()

    @dag(dag_id=WATCHDOG_DAG_ID, schedule=settings.operations.watchdog_schedule, start_date=START_DATE,
         catchup=False, max_active_runs=1, tags=["stocksync", "ops"], doc_md=__doc__,
         default_args=default_args(settings, defer_alerts=False))
    def stocksync_watchdog() -> None:
        @task
        def reap_dead_runs_task() -> dict[str, Any]:
            """Declare dead the sync runs that stopped beating without their teardown, releasing their
            freezes (never a manual one), and alert each."""
            with _fail_fast():  # a permanent error (a broken shop database) fails at once, alerted
                return reap_dead_runs(_stocksync_dsn(), load_settings(), shop=_shop())

        @task(trigger_rule="all_done")
        def check_freezes_task() -> dict[str, Any]:
            """Alert once per freeze that has kept checkout closed longer than the configured bound."""
            with _fail_fast():
                return check_freezes(_stocksync_dsn(), load_settings(), shop=_shop())

        @task(trigger_rule="all_done")
        def retry_alerts_task() -> dict[str, Any]:
            """Send the watchdog's alerts and retry every alert that could not be delivered."""
            with _fail_fast():
                return retry_alerts(_stocksync_dsn(), load_settings())

        reap = reap_dead_runs_task.override(task_id="reap_dead_runs")()
        check = check_freezes_task.override(task_id="check_freezes")()
        retry = retry_alerts_task.override(task_id="retry_alerts")()
        reap >> check >> retry

    return bound_tasks(stocksync_watchdog(), settings)
