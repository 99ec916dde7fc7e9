"""The nightly's deadline: an Airflow `DeadlineAlert` that fires when
`inventory_nightly_sync` has not finished `operations.nightly_deadline_seconds` after its logical
date (02:30 UTC + 1 h with the shipped config: by 03:30 UTC).

Airflow (3.1+, experimental) evaluates deadlines in the scheduler and runs an `AsyncCallback` in
the triggerer, so both must run; `dag.test()` runs neither, and a manual run (no logical date) gets
no deadline. The callback records the alert in `stocksync.alerts` (kind `deadline_missed`, once per
run) and sends it through the usual channels with their short timeouts (`delivery.py`); an alert
it could not deliver is retried by the watchdog like any other.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "include.stocksync.airflow.deadline.nightly_deadline_missed"


def nightly_deadline(settings: Settings) -> DeadlineAlert:
    """The DeadlineAlert of the nightly DAG. The callback is given by its dotted path: the
    triggerer imports it (the project root is on its PYTHONPATH, like the workers')."""
    from airflow.sdk.definitions.deadline import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                         interval=timedelta(seconds=settings.operations.nightly_deadline_seconds),
                         callback=AsyncCallback(CALLBACK_PATH))


async def nightly_deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> str:
    """Run by the triggerer when the deadline passes. `context` is Airflow's simple deadline context:
    `{"dag_run": {...the DAG run as the REST API shows it...}, "deadline": {"id", "deadline_time"}}`.
    The database and HTTP work runs in a thread, so the triggerer's event loop is never blocked.
    Returns text: Airflow stores the callback's result in a text column, and on a PostgreSQL
    metadata database a dict there crashes the triggerer."""
    return json.dumps(await asyncio.to_thread(record_and_send, context or {}))


def record_and_send(context: dict[str, Any]) -> dict[str, Any]:
    """Record the missed deadline once per run and send it; returns what was done (the trigger's event)."""
    from include.stocksync.airflow.connections import stocksync_dsn
    from include.stocksync.config.settings import settings_reloaded_on_change
    from include.stocksync.ops import delivery
    from include.stocksync.runs.uow import transaction

    settings = settings_reloaded_on_change()  # the triggerer lives long: an edited config counts
    dag_run = context.get("dag_run") or {}
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "?")
    dag_id = str(dag_run.get("dag_id") or "inventory_nightly_sync")
    when = (context.get("deadline") or {}).get("deadline_time")
    dsn = stocksync_dsn(settings)
    subject = f"deadline:{dag_id}:{run_id}"
    with transaction(dsn, connect_timeout=5) as conn:
        if delivery.already_alerted(conn, delivery.DEADLINE_MISSED, subject):
            return {"recorded": False, "reason": "already alerted"}
        body = delivery.payload(
            kind=delivery.DEADLINE_MISSED, dag_id=dag_id, run_id=run_id, task_id="deadline",
            text=f"stocksync: {dag_id} run {run_id} has not finished by its deadline {when} "
                 f"(state {dag_run.get('state')}): check the run and the freeze",
            error=f"deadline {when} missed; run state {dag_run.get('state')}", deadline_time=str(when))
        delivery.queue(conn, settings, body, queued_by=subject, subject=subject)
    attempts = delivery.deliver(dsn, settings, run_id=subject,
                                budget_seconds=settings.operations.alert_delivery_budget_seconds)
    return {"recorded": True, "delivered": [a.delivered for a in attempts]}
