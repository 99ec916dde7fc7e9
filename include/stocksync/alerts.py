"""Failure alerts: an `HttpNotifier` posting a JSON alert to the alerts webhook Connection.

`HttpNotifier` renders its templates in place, so one instance shared through
`default_args` would keep the first failure's values; this subclass renders a fresh copy
for every call.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.providers.http.notifications.http import HttpNotifier

ALERT_PAYLOAD: dict[str, str] = {
    "text": "stocksync: {{ dag.dag_id }} failed at {{ ti.task_id }} (run {{ run_id }})",
    "dag_id": "{{ dag.dag_id }}",
    "run_id": "{{ run_id }}",
    "task_id": "{{ ti.task_id }}",
    "try_number": "{{ ti.try_number }}",
    "error": "{{ exception if exception is defined else '' }}",
    "report": "{{ stocksync_report(run_id) }}",
    "report_url": "{{ stocksync_report_url(run_id) }}",
}


class SyncFailureNotifier(HttpNotifier):
    """Posts `ALERT_PAYLOAD` (rendered for the failed task) to the alerts webhook."""

    def __init__(self, *, http_conn_id: str, endpoint: str, **kwargs: Any) -> None:
        super().__init__(http_conn_id=http_conn_id, endpoint=endpoint, method="POST",
                         json=dict(ALERT_PAYLOAD), headers={"Content-Type": "application/json"}, **kwargs)

    def __call__(self, *args: Any) -> None:
        fresh = copy.copy(self)
        fresh.json = dict(ALERT_PAYLOAD)
        fresh.__dict__.pop("hook", None)
        HttpNotifier.__call__(fresh, *args)
