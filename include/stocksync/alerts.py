"""Failure alerts: an `HttpNotifier` posting a JSON alert to the alerts webhook Connection.

`HttpNotifier` renders its templates in place, so one instance shared through
`default_args` would keep the first failure's values; this subclass renders a fresh copy
for every call.

Every alert is also recorded in `stocksync.alerts` (delivered or not, and why not) and the
run's report is rewritten, so the report and the Airflow "Stock sync" page show the alerts
sent (shared/DESIGN.md §3.7). Recording never hides the alert: a failure to record is logged.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from airflow.providers.http.notifications.http import HttpNotifier

log = logging.getLogger(__name__)

ALERT_PAYLOAD: dict[str, str] = {
    "text": "stocksync: {{ dag.dag_id }} failed at {{ ti.task_id }} (run {{ run_id }})",
    "dag_id": "{{ dag.dag_id }}",
    "run_id": "{{ run_id }}",
    "task_id": "{{ ti.task_id }}",
    "try_number": "{{ ti.try_number }}",
    "error": "{{ exception if exception is defined else '' }}",
    "report": "{{ stocksync_report(run_id) }}",
    "report_url": "{{ stocksync_report_url(dag.dag_id, run_id) }}",
}


class SyncFailureNotifier(HttpNotifier):
    """Posts `ALERT_PAYLOAD` (rendered for the failed task) to the alerts webhook and records it."""

    def __init__(self, *, http_conn_id: str, endpoint: str, shop_conn_id: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(http_conn_id=http_conn_id, endpoint=endpoint, method="POST",
                         json=dict(ALERT_PAYLOAD), headers={"Content-Type": "application/json"}, **kwargs)
        self.shop_conn_id = shop_conn_id

    def __call__(self, *args: Any) -> None:
        fresh = copy.copy(self)
        fresh.json = dict(ALERT_PAYLOAD)
        fresh.__dict__.pop("hook", None)
        if self.shop_conn_id and len(args) == 1:
            first = self._first_cause(args[0])
            if first:  # a retried step's alert names what went wrong first, not only the last try
                fresh.json["first_cause"] = first
        delivery_error: Exception | None = None
        try:
            HttpNotifier.__call__(fresh, *args)
        except Exception as exc:  # recorded below, then raised as before
            delivery_error = exc
        if self.shop_conn_id and len(args) == 1:
            self._record(args[0], fresh.json, delivery_error)
        if delivery_error is not None:
            raise delivery_error

    def _first_cause(self, context: Any) -> str | None:
        from include.stocksync.connections import postgres_dsn
        from include.stocksync.db import connect, execute_file

        try:
            with connect(postgres_dsn(str(self.shop_conn_id)), connect_timeout=5) as conn:
                row = execute_file(conn, "stocksync/select_sync_run_first_error",
                                   {"run_id": context.get("run_id"), "dag_id": context["dag"].dag_id}).fetchone()
        except Exception:  # the alert goes out without it
            log.exception("stocksync: could not read the run's first cause")
            return None
        return str(row[0])[:2000] if row and row[0] else None

    def _record(self, context: Any, payload: dict[str, Any], delivery_error: Exception | None) -> None:
        from include.stocksync.connections import postgres_dsn
        from include.stocksync.db import connect, execute_file
        from include.stocksync.report import write_report
        from include.stocksync.runs import run_owner
        from include.stocksync.settings import load_settings

        ti = context.get("ti")
        run_id = context.get("run_id") or payload.get("run_id")
        try:
            with connect(postgres_dsn(str(self.shop_conn_id)), connect_timeout=5) as conn:
                execute_file(conn, "stocksync/insert_alert", {
                    "run_id": run_id, "dag_id": context["dag"].dag_id, "task_id": getattr(ti, "task_id", "?"),
                    "try_number": getattr(ti, "try_number", None),
                    "target": f"{self.http_conn_id}{self.endpoint or ''}",
                    "delivered": delivery_error is None,
                    "delivery_error": None if delivery_error is None else str(delivery_error)[:2000],
                    "error": str(payload.get("error") or context.get("exception") or "")[:4000],
                })
                owner = run_owner(conn, run_id)
                conn.commit()
                if owner == context["dag"].dag_id:
                    write_report(conn, load_settings(), run_id)  # the report lists the alert
        except Exception:  # the shop DB may be what failed: the webhook alert stands on its own
            log.exception("stocksync: could not record the alert for run %s", run_id)
