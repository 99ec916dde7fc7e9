"""Alerts that are not task failures: orders the WMS refused, a gap in the change feed, a night
whose drift is far above the trend (docs/order-push-and-intraday.md).

A task failure alerts through the DAGs' `SyncFailureNotifier`; these conditions are results of a
task that succeeded (the run did what it should: hold the orders, stop at the gap, record the
drift), so the task posts them itself through the same channels (the webhook Connection, and email
when configured) and records each in `stocksync.alerts` with its kind (`order_dead_letters`,
`feed_gap`, `drift`, ...) and the payload sent: the Stock sync page and the run report list them.
A delivery that fails is recorded undelivered and retried by the watchdog like any other alert;
only an alert that could not even be recorded is raised, so the task's retry tries again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

NOTICE = "notice"  # the kind of an alert whose payload names none


def post_alert(dsn: str, payload: dict[str, Any], *, conn_id: str, endpoint: str, run_id: str, dag_id: str,
               task_id: str, try_number: int | None = None, kind: str | None = None,
               settings: Settings | None = None) -> list[str | None]:
    """Record `payload` (JSON) under its kind (`kind`, else the payload's `kind`, else `notice`) and
    send it to the alerts channels (the webhook Connection `conn_id` + `endpoint`, and email when
    configured). Returns each channel's delivery error (None: delivered). Raises when it could not
    be recorded and not delivered either: an alert nobody received and nobody will retry. `settings`:
    the caller's (the process's when not given) for the delivery bounds and the email channel."""
    from include.stocksync.config.settings import process_settings
    from include.stocksync.ops import delivery

    settings = (settings or process_settings()).model_copy(update={"alerts_conn_id": conn_id,
                                                                   "alerts_endpoint": endpoint})
    body: dict[str, Any] = {**payload, "kind": kind or payload.get("kind") or NOTICE}
    for key, value in (("run_id", run_id), ("dag_id", dag_id), ("task_id", task_id),
                       ("try_number", "" if try_number is None else str(try_number)),
                       ("error", str(payload.get("text") or ""))):
        body.setdefault(key, value)
    try:
        errors = delivery.send_now(dsn, settings, body, queued_by=run_id)
    except Exception as exc:  # the shop DB may be what failed: send it anyway, unrecorded
        log.exception("stocksync: could not record the %s alert for run %s; sending it unrecorded", body["kind"],
                      run_id)
        unrecorded = [delivery.send(c.name, c.target, body, settings) for c in delivery.channels(settings)]
        if all(unrecorded):
            raise RuntimeError(f"stocksync {body['kind']} alert for run {run_id} neither recorded nor delivered: "
                               + "; ".join(e for e in unrecorded if e)) from exc
        return unrecorded
    for error in errors:
        if error:
            log.warning("stocksync: %s alert for run %s not delivered (%s); the watchdog retries it",
                        body["kind"], run_id, error)
    return errors
