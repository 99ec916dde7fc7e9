"""Failure alerts: an `HttpNotifier` posting a JSON alert to the alerts webhook Connection.

`HttpNotifier` renders its templates in place, so one instance shared through
`default_args` would keep the first failure's values; this subclass renders a fresh copy
for every call.

Every alert is also recorded in `stocksync.alerts` (delivered or not, and why not) and the
run's report is rewritten, so the report and the Airflow "Stock sync" page show the alerts
sent (docs/architecture.md). Recording never hides the alert: a failure to record is logged.

A failed task between the setup and the teardown only *records* its alert (rendered,
one row per channel, undelivered): the run's teardown sends it after it has released the freeze,
and the watchdog retries it if that never happens (`include/stocksync/ops/delivery.py`). So a webhook
that hangs or an SMTP server that is down never delays the release. The setup's and teardown's
own alerts (no teardown follows them), the watchdog's, and any alert that cannot be recorded (the
database is what failed) are sent at once, with short connect and read timeouts.
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
}
# The payload depends on nothing a DAG must declare (no user-defined macros): the report's path and
# link are added in Python (`_with_report`), and a template that cannot be rendered still alerts
# (`render_template_fields` falls back to the context's plain values), so every DAG's failure alerts.


class SyncFailureNotifier(HttpNotifier):
    """Posts `ALERT_PAYLOAD` (rendered for the failed task) to the alerts webhook and records it."""

    def __init__(self, *, http_conn_id: str, endpoint: str, stocksync_conn_id: str | None = None,
                 defer_delivery: bool = True, **kwargs: Any) -> None:
        super().__init__(http_conn_id=http_conn_id, endpoint=endpoint, method="POST",
                         json=dict(ALERT_PAYLOAD), headers={"Content-Type": "application/json"}, **kwargs)
        self.stocksync_conn_id = stocksync_conn_id  # where alerts are recorded: stocksync's own database
        self.defer_delivery = defer_delivery  # False for DAGs without a teardown (the watchdog)

    def __call__(self, *args: Any) -> None:
        fresh = copy.copy(self)
        fresh.json = dict(ALERT_PAYLOAD)
        fresh.__dict__.pop("hook", None)
        if self.stocksync_conn_id and len(args) == 1:
            first = self._first_cause(args[0])
            if first:  # a retried step's alert names what went wrong first, not only the last try
                fresh.json["first_cause"] = first
        HttpNotifier.__call__(fresh, *args)  # renders the payload, then `notify` below

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render the payload; when a template cannot be rendered, alert with the context's plain
        values and the rendering error instead of raising (which would lose the alert)."""
        try:
            super().render_template_fields(context, jinja_env)
        except Exception as exc:
            log.exception("stocksync: could not render the failure alert; sending its plain values")
            self.json = _plain_payload(context, f"{type(exc).__name__}: {exc}")

    # --- record first, send after the freeze is released (delivery.py) ---------------------
    def notify(self, context: Any) -> None:
        """Queue the rendered alert for the run's teardown, or send it now when no teardown follows
        or it cannot be queued. Raises only when it was sent now and no channel took it."""
        from include.stocksync.config.settings import process_settings
        from include.stocksync.ops import delivery

        settings = process_settings()
        body = _with_report({**self.json, "kind": delivery.TASK_FAILED})
        task = getattr(context.get("ti"), "task", None)
        boundary = bool(getattr(task, "is_setup", False) or getattr(task, "is_teardown", False))
        if self.stocksync_conn_id and self.defer_delivery and not boundary and self._queue(settings, body):
            return
        if self.stocksync_conn_id:  # what failed, why, what checkout does now, in a few lines
            from include.stocksync.airflow.connections import postgres_dsn, shop_port_for_alerts
            from include.stocksync.ops.alert_text import summarize_with

            body = summarize_with(postgres_dsn(str(self.stocksync_conn_id)), body, shop_port_for_alerts(settings))
        errors = []
        for channel in delivery.channels(settings):
            error = delivery.send(channel.name, channel.target, body, settings)
            if self.stocksync_conn_id:
                self._record(context, body, channel, error, settings)
            if error:
                errors.append(f"{channel.target}: {error}")
        if errors:
            raise RuntimeError("stocksync alert not delivered: " + "; ".join(errors))

    def _queue(self, settings: Any, body: dict[str, Any]) -> bool:
        from include.stocksync.airflow.connections import postgres_dsn
        from include.stocksync.ops import delivery
        from include.stocksync.runs.uow import transaction

        try:
            with transaction(postgres_dsn(str(self.stocksync_conn_id)), connect_timeout=5) as conn:
                delivery.queue(conn, settings, body, queued_by=str(body["run_id"]))
        except Exception:  # the database may be what failed: send it now instead
            log.exception("stocksync: could not queue the alert for run %s; sending it now", body.get("run_id"))
            return False
        return True
    # --- end: record first, send after the freeze is released ------------------------------------------

    def _first_cause(self, context: Any) -> str | None:
        from include.stocksync.airflow.connections import postgres_dsn
        from include.stocksync.store.db import connect, execute_file

        try:
            with connect(postgres_dsn(str(self.stocksync_conn_id)), connect_timeout=5) as conn:
                row = execute_file(conn, "stocksync/select_sync_run_first_error",
                                   {"run_id": context.get("run_id"), "dag_id": context["dag"].dag_id}).fetchone()
        except Exception:  # the alert goes out without it
            log.exception("stocksync: could not read the run's first cause")
            return None
        return str(row[0])[:2000] if row and row[0] else None

    def _record(self, context: Any, payload: dict[str, Any], channel: Any, delivery_error: str | None,
                settings: Any) -> None:
        """An alert sent at once (one row per channel, with the attempt's result)."""
        from include.stocksync.airflow.connections import postgres_dsn
        from include.stocksync.ops import delivery
        from include.stocksync.runs.record import run_owner
        from include.stocksync.runs.uow import committed
        from include.stocksync.store.db import connect, execute_file
        from include.stocksync.ui.report import write_report

        run_id = context.get("run_id") or payload.get("run_id")
        try:
            with connect(postgres_dsn(str(self.stocksync_conn_id)), connect_timeout=5) as conn:
                with committed(conn):
                    alert_id = delivery.record(conn, channel, payload, queued_by=str(run_id))
                    execute_file(conn, "stocksync/update_alert_attempt", {
                        "alert_id": alert_id, "delivered": delivery_error is None, "delivery_error": delivery_error})
                    owner = run_owner(conn, run_id)
                if owner == context["dag"].dag_id:
                    write_report(conn, settings, run_id)  # the report lists the alert
        except Exception:  # the shop DB may be what failed: the webhook alert stands on its own
            log.exception("stocksync: could not record the alert for run %s", run_id)


def _plain_payload(context: Any, render_error: str) -> dict[str, Any]:
    """The alert's fields straight from the task's context (no template)."""
    dag, ti = context.get("dag"), context.get("ti")
    dag_id, task_id = str(getattr(dag, "dag_id", "") or ""), str(getattr(ti, "task_id", "") or "")
    run_id = str(context.get("run_id") or "")
    exception = context.get("exception")
    return {"text": f"stocksync: {dag_id} failed at {task_id} (run {run_id})", "dag_id": dag_id, "run_id": run_id,
            "task_id": task_id, "try_number": str(getattr(ti, "try_number", "") or ""),
            "error": "" if exception is None else str(exception), "render_error": render_error[:2000]}


def _with_report(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the run report's path and the run page's link (a convenience: without them on error)."""
    from include.stocksync.runs.reports import report_file, report_url

    try:
        body.setdefault("report", report_file(str(body["run_id"])))
        body.setdefault("report_url", report_url(str(body["dag_id"]), str(body["run_id"])))
    except Exception:
        log.debug("stocksync: no report link for run %s", body.get("run_id"), exc_info=True)
    return body
