"""The `stocksync_watchdog` DAG (dags/stocksync_watchdog.py): three tasks calling the plain
functions of `ops/watchdog.py`, each on its own so one that fails or hangs does not stop the next."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import dag, task

from include.stocksync.airflow.connections import shop_port_for_alerts
from include.stocksync.airflow.task_support import (
    START_DATE,
    _fail_fast,
    _shop,
    _stocksync_dsn,
    airflow_view,
    bound_tasks,
    default_args,
)
from include.stocksync.config.settings import process_settings
from include.stocksync.ops import watchdog
from include.stocksync.runs import record as runs
from include.stocksync.store.db import connect
from include.stocksync.ui.report import write_report

log = logging.getLogger(__name__)


def rewrite_reports(dsn: str, run_ids: list[str]) -> None:
    """Each dead run's report says what happened to it (best effort: reports are off the critical path)."""
    if not run_ids:
        return
    with connect(dsn) as conn:
        for run_id in run_ids:
            try:
                write_report(conn, runs.spec_of(runs.read_run(conn, run_id)).settings, run_id)
            except Exception:
                conn.rollback()
                log.warning("watchdog: could not rewrite the report of run %s", run_id, exc_info=True)


def build_watchdog_dag() -> Any:
    """The `stocksync_watchdog` DAG (dags/stocksync_watchdog.py)."""
    settings = process_settings()

    @dag(dag_id=watchdog.WATCHDOG_DAG_ID, schedule=settings.operations.watchdog_schedule, start_date=START_DATE,
         catchup=False, max_active_runs=1, tags=["stocksync", "ops"], doc_md=watchdog.__doc__,
         default_args=default_args(settings, defer_alerts=False))
    def stocksync_watchdog() -> None:
        @task
        def reap_dead_runs_task() -> dict[str, Any]:
            """Declare dead the sync runs that stopped beating without their teardown, releasing their
            freezes (never a manual one), and alert each."""
            with _fail_fast():  # a permanent error (a broken shop database) fails at once, alerted
                found = watchdog.reap_dead_runs(_stocksync_dsn(), process_settings(), lookup=airflow_view,
                                                shop=_shop())
            rewrite_reports(_stocksync_dsn(), [w["run_id"] for w in (*found["abandoned"], *found["orphaned_freezes"])])
            return found

        @task(trigger_rule="all_done")
        def check_freezes_task() -> dict[str, Any]:
            """Alert once per freeze that has kept checkout closed longer than the configured bound."""
            with _fail_fast():
                return watchdog.check_freezes(_stocksync_dsn(), process_settings(), shop=_shop())

        @task(trigger_rule="all_done")
        def retry_alerts_task() -> dict[str, Any]:
            """Send the watchdog's alerts and retry every alert that could not be delivered."""
            with _fail_fast():
                settings = process_settings()
                return watchdog.retry_alerts(_stocksync_dsn(), settings, shop=shop_port_for_alerts(settings))

        reap = reap_dead_runs_task.override(task_id="reap_dead_runs")()
        check = check_freezes_task.override(task_id="check_freezes")()
        retry = retry_alerts_task.override(task_id="retry_alerts")()
        reap >> check >> retry

    return bound_tasks(stocksync_watchdog(), settings)
