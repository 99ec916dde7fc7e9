"""Alerts that are not task failures: orders the WMS refused, a gap in the change feed, a night
whose drift is far above the trend (docs/order-push-and-intraday.md).

A task failure alerts through the DAGs' `SyncFailureNotifier`; these conditions are results of a
task that succeeded (the run did what it should: hold the orders, stop at the gap, record the
drift), so the task posts them itself to the same webhook Connection and records each in
`stocksync.alerts`, delivered or not, like the notifier does: the Stock sync page and the run
report list them. A delivery failure is recorded and then raised, so the task fails and its retry
(and the failure notifier) try again: an alert nobody received must not pass silently.
"""

from __future__ import annotations

import logging
from typing import Any

from include.stocksync.db import connect, execute_file

log = logging.getLogger(__name__)


def post_alert(dsn: str, payload: dict[str, Any], *, conn_id: str, endpoint: str, run_id: str, dag_id: str,
               task_id: str, try_number: int | None = None) -> None:
    """POST `payload` (JSON) to the alerts webhook Connection `conn_id` and record it. Raises the
    delivery error after recording it."""
    from airflow.providers.http.hooks.http import HttpHook

    delivery_error: Exception | None = None
    try:
        HttpHook(method="POST", http_conn_id=conn_id).run(endpoint, json=payload,
                                                          headers={"Content-Type": "application/json"})
    except Exception as exc:  # recorded, then raised
        delivery_error = exc
    try:
        with connect(dsn, connect_timeout=10) as conn:
            execute_file(conn, "stocksync/insert_alert", {
                "run_id": run_id, "dag_id": dag_id, "task_id": task_id, "try_number": try_number,
                "target": f"{conn_id}{endpoint or ''}", "delivered": delivery_error is None,
                "delivery_error": None if delivery_error is None else str(delivery_error)[:2000],
                "error": str(payload.get("text") or "")[:4000],
            })
            conn.commit()
    except Exception:
        log.exception("stocksync: could not record the alert for run %s", run_id)
    if delivery_error is not None:
        raise delivery_error
