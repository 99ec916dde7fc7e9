"""Alert delivery that never blocks and never loses an alert.

An alert is first *recorded*, one `stocksync.alerts` row per channel with `delivered = false`,
and then *sent*: the webhook (`alerts_conn_id`, through Airflow's `HttpNotifier`) and, when the
optional SMTP connection (`operations.alert_smtp_conn_id`) exists, an email (through Airflow's
`SmtpNotifier`); both are Airflow's, so the Airflow layer hands them down (`AlertTransport`,
include/stocksync/airflow/notifiers.py). Every attempt has short connect and read timeouts and its result (or the reason
it failed: a timeout, a refused connection, a 5xx) is written on the row. Who sends:

- the teardown of the run the alert is about (or that found it), after it released the freeze,
  within `operations.alert_delivery_budget_seconds` in total;
- the watchdog DAG, for every row still undelivered `alert_retry_after_seconds` after its last
  attempt, up to `alert_retry_max_attempts` attempts;
- the notifier itself, at once, when no teardown will follow (a failed setup or teardown, the
  watchdog) or when the database that holds the queue is what failed.

Rows are locked while they are sent (`FOR UPDATE SKIP LOCKED`), one per transaction, so a
teardown and the watchdog never send one alert twice.

Payloads are sent as recorded: never rendered as templates again (they quote WMS text).
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from include.stocksync.ops import alert_text
from include.stocksync.runs.reports import report_file, report_url
from include.stocksync.runs.uow import committed
from include.stocksync.shop.port import ShopPort
from include.stocksync.store.db import connect, execute_file

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

NOT_SENT_YET = "not sent yet: alerts go out after the run's freeze is released (teardown, else the watchdog)"
# Alert kinds (stocksync.alerts.kind)
TASK_FAILED = "task_failed"
ORPHANED_FREEZE = "orphaned_freeze"
RUN_ABANDONED = "run_abandoned"
FREEZE_OVERDUE = "freeze_overdue"
REPORT_FAILED = "report_failed"
DEADLINE_MISSED = "deadline_missed"
PER_PASS_LIMIT = 50


@dataclass(frozen=True)
class Channel:
    name: str          # webhook | email
    target: str        # what stocksync.alerts.target shows
    conn_id: str
    endpoint: str | None = None


class AlertTransport(Protocol):
    """How alerts leave: Airflow's HttpNotifier and SmtpNotifier on Airflow connections
    (include/stocksync/airflow/notifiers.py), handed down when include.stocksync.airflow is
    imported (only that package imports Airflow)."""

    def has_connection(self, conn_id: str) -> bool: ...

    def post_webhook(self, conn_id: str, endpoint: str | None, body: dict[str, Any],
                     timeouts: tuple[float, float]) -> None: ...

    def send_email(self, conn_id: str, subject: str, html_content: str, timeout: float) -> None: ...


_transport: AlertTransport | None = None


def send_through(sender: AlertTransport) -> None:
    """Send alerts through `sender` from now on (include/stocksync/airflow installs Airflow's)."""
    global _transport
    _transport = sender


def transport() -> AlertTransport:
    if _transport is None:
        raise RuntimeError("no alert transport in this process: alerts go out through Airflow's notifiers, "
                           "installed when include.stocksync.airflow is imported (import it before sending)")
    return _transport


def channels(settings: Settings) -> list[Channel]:
    """The webhook, and email when the optional SMTP connection exists."""
    found = [Channel("webhook", f"{settings.alerts_conn_id}{settings.alerts_endpoint or ''}",
                     settings.alerts_conn_id, settings.alerts_endpoint)]
    smtp = settings.operations.alert_smtp_conn_id
    if smtp and _connection_exists(smtp):
        found.append(Channel("email", f"smtp:{smtp}", smtp))
    return found


def _connection_exists(conn_id: str) -> bool:
    return _transport is not None and _transport.has_connection(conn_id)


def payload(*, kind: str, text: str, dag_id: str, run_id: str, task_id: str, error: str = "",
            try_number: Any = None, **extra: Any) -> dict[str, Any]:
    """An alert body: the keys every stocksync alert carries (see alerts.ALERT_PAYLOAD), plus `extra`."""
    body: dict[str, Any] = {"text": text, "kind": kind, "dag_id": dag_id, "run_id": run_id, "task_id": task_id,
                            "try_number": "" if try_number is None else str(try_number), "error": error[:4000]}
    try:
        body["report"] = report_file(run_id)
        body["report_url"] = report_url(dag_id, run_id)
    except Exception:  # a link is a convenience; the alert goes without it
        log.debug("no report link for %s", run_id, exc_info=True)
    body.update(extra)
    return body


def queue(conn: psycopg.Connection, settings: Settings, body: dict[str, Any], *, queued_by: str,
          subject: str | None = None) -> list[int]:
    """Record `body` for every channel, undelivered; the caller commits. Returns the alert ids."""
    return [record(conn, channel, body, queued_by=queued_by, subject=subject) for channel in channels(settings)]


def record(conn: psycopg.Connection, channel: Channel, body: dict[str, Any], *, queued_by: str,
           subject: str | None = None) -> int:
    """One channel's row of an alert, undelivered; the caller commits. Returns its id."""
    row = execute_file(conn, "stocksync/insert_alert_queued", {
        "run_id": body["run_id"], "dag_id": body["dag_id"], "task_id": body.get("task_id") or "?",
        "try_number": _int_or_none(body.get("try_number")), "target": channel.target,
        "delivery_error": NOT_SENT_YET, "error": str(body.get("error") or "")[:4000],
        "kind": body.get("kind") or TASK_FAILED, "channel": channel.name,
        "payload": json.dumps(body, default=str), "subject": subject, "queued_by": queued_by,
    }).fetchone()
    assert row is not None
    return int(row[0])


def already_alerted(conn: psycopg.Connection, kind: str, subject: str) -> bool:
    row = execute_file(conn, "stocksync/select_alert_subject_exists", {"kind": kind, "subject": subject}).fetchone()
    return bool(row and row[0])


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ sending

def send(channel: str, target: str, body: dict[str, Any], settings: Settings) -> str | None:
    """One attempt through one channel. None when delivered, else why not (never raises)."""
    try:
        if channel == "email":
            _send_email(target.removeprefix("smtp:"), body, settings)
        else:
            _send_webhook(body, settings)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:2000]
    return None


def _timeouts(settings: Settings) -> tuple[float, float]:
    ops = settings.operations
    return ops.alert_connect_timeout_seconds, ops.alert_read_timeout_seconds


def _send_webhook(body: dict[str, Any], settings: Settings) -> None:
    """POST the body on the webhook connection (which gives URL and auth), with our connect and read
    timeouts whatever the connection's extras say, sent as recorded (never rendered as a template
    again): data as text, the report by its URL (`alert_text.for_chat`)."""
    transport().post_webhook(settings.alerts_conn_id, settings.alerts_endpoint, alert_text.for_chat(body),
                             _timeouts(settings))


def email_subject(body: dict[str, Any]) -> str:
    """A subject line that names the run whatever the length of the alert's text (which the body
    carries whole): what failed, in which DAG and run. Control characters never reach the header."""
    if body.get("dag_id") and body.get("run_id"):
        subject = f"stocksync: {body['dag_id']} {body.get('task_id') or 'run'} {body.get('kind') or 'alert'}" \
                  f" (run {body['run_id']})"
    else:
        subject = str(body.get("text") or "stocksync alert")
    return "".join(ch if ch.isprintable() else " " for ch in subject)[:300]


def _send_email(conn_id: str, body: dict[str, Any], settings: Settings) -> None:
    """Send the alert as an email on SMTP connection `conn_id` (its extra `to` lists the
    recipients, `from_email` the sender), bounded by our timeouts, one try."""
    text = str(body.get("text") or "stocksync alert")
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in body.items())
    transport().send_email(conn_id, email_subject(body), f"<p>{html.escape(text)}</p><table>{rows}</table>",
                           max(_timeouts(settings)))


def send_now(dsn: str, settings: Settings, body: dict[str, Any], *, queued_by: str) -> list[str | None]:
    """Record `body` (its kind and payload, one row per channel) and send it at once, writing each
    attempt's result on its row: an alert that is not a task failure (refused orders, a feed gap, a
    night's drift). Returns each channel's error (None: delivered). An undelivered row is retried
    by the watchdog; raises only when the alert could not be recorded (the caller decides)."""
    with connect(dsn, connect_timeout=5) as conn:
        with committed(conn):
            ids = queue(conn, settings, body, queued_by=queued_by)
        errors: list[str | None] = []
        for alert_id, channel in zip(ids, channels(settings), strict=True):
            error = send(channel.name, channel.target, body, settings)
            with committed(conn):
                execute_file(conn, "stocksync/update_alert_attempt",
                             {"alert_id": alert_id, "delivered": error is None, "delivery_error": error})
            errors.append(error)
    return errors


@dataclass(frozen=True)
class Attempt:
    alert_id: int
    kind: str
    channel: str
    delivered: bool
    error: str | None


def deliver(dsn: str, settings: Settings, *, run_id: str | None = None, budget_seconds: float | None = None,
            limit: int = PER_PASS_LIMIT, shop: ShopPort | None = None) -> list[Attempt]:
    """Send undelivered alerts: those of run `run_id` (about it or queued by it), or with `run_id`
    None (the watchdog) every one due for a retry. A failure alert says whether checkout is still
    closed, read from `shop` (none: the reference shop in stocksync's database `dsn`). One row per
    transaction, locked while it is sent; stops after `budget_seconds`. Never raises: a database
    that cannot be reached leaves the rows to the next sender."""
    ops = settings.operations
    started = time.monotonic()
    tried: list[int] = []
    attempts: list[Attempt] = []
    try:
        with connect(dsn, connect_timeout=5) as conn:
            while len(tried) < limit:
                if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
                    log.warning("alert delivery budget of %.0f s spent; the watchdog retries the rest", budget_seconds)
                    break
                with committed(conn):  # the row stays locked while it is sent
                    row = execute_file(conn, "stocksync/select_alerts_to_deliver", {
                        "run_id": run_id, "max_attempts": ops.alert_retry_max_attempts, "skip": tried,
                        "retry_after_seconds": ops.alert_retry_after_seconds, "limit": 1}).fetchone()
                    if row is None:
                        break
                    alert_id, _, _, kind, channel, target, body, _ = row
                    tried.append(int(alert_id))
                    # worded now, when what checkout is doing is known (alert_text.py)
                    body = alert_text.summarize(conn, body if isinstance(body, dict) else json.loads(body), shop)
                    error = send(channel, target, body, settings)
                    execute_file(conn, "stocksync/update_alert_attempt",
                                 {"alert_id": alert_id, "delivered": error is None, "delivery_error": error})
                attempts.append(Attempt(int(alert_id), kind, channel, error is None, error))
                if error:
                    log.warning("stocksync: alert %s (%s, %s) not delivered: %s", alert_id, kind, channel, error)
    except psycopg.Error:
        log.exception("stocksync: could not deliver queued alerts (they stay queued for the watchdog)")
    return attempts
