"""A failure alert someone can read on a phone (issue 15): what failed, why (the first cause), what
checkout is doing now, and the link to the run's page; the full error stays in the report.

A task-failure alert is rendered when the task fails, but sent later (after the run's teardown
released its freeze, or by the watchdog when the teardown never ran: `delivery.py`), so what
checkout is doing is only known when it is sent. `summarize` is called right before a send, on the
sender's connection: it reads the run record (its first cause, its guardrails and checks) and the
run's active freeze, and sets the payload's `text` and the fields `summary`, `cause`, `checkout` and
`checkout_closed_until` (ISO time or null). Alerts of other kinds keep their own text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.db import query

log = logging.getLogger(__name__)

TASK_FAILED = "task_failed"
MAX_SENTENCE = 240


def checkout_now(run: Mapping[str, Any] | None, frozen_until: datetime | None) -> str:
    """Checkout as this run leaves it, right now."""
    from include.stocksync.pages import local_time

    if frozen_until is not None:
        return (f"still closed by this run until {local_time(frozen_until, zone=True)} at the latest "
                "(its freeze expires then; its teardown releases it sooner)")
    if run is None or not run.get("freeze_seconds"):
        return "open (this run never closed it)"
    return "open again (released by the run's teardown)"


def compose(body: Mapping[str, Any], run: Mapping[str, Any] | None, checks: list[dict[str, Any]],
            frozen_until: datetime | None) -> dict[str, Any]:
    """The payload with its phone-sized `text` (pure: the unit tests call it). `run` is the run's
    record (None when it has none: refused at its first task)."""
    from include.stocksync import runview
    from include.stocksync.charts import shorten

    dag_id, run_id = str(body.get("dag_id") or ""), str(body.get("run_id") or "")
    error = body.get("first_cause") or body.get("error")
    if run is not None:
        story = runview.story({**run, "recorded": True}, checks=checks, base="")
    else:
        story = runview.story({"dag_id": dag_id, "run_id": run_id, "recorded": False}, base="",
                              failed_task=str(body.get("task_id") or "freeze_checkout"), error=error)
    checkout = checkout_now(run, frozen_until)
    sentence = shorten(story.sentence, MAX_SENTENCE)
    link = body.get("report_url") or ""
    text = f"stocksync {runview.dag_label(dag_id)} ({dag_id}): {sentence} Checkout: {checkout}."
    return {**body, "text": f"{text} {link}".strip(), "summary": story.sentence, "cause": story.cause,
            "step": story.step, "checkout": checkout,
            "checkout_closed_until": frozen_until.isoformat() if frozen_until else None}


def summarize(conn: psycopg.Connection, body: dict[str, Any]) -> dict[str, Any]:
    """`body` with its phone-sized text, read on `conn` right before it is sent; a task-failure
    alert only. Never raises: on any problem the alert goes as it was recorded."""
    if (body.get("kind") or TASK_FAILED) != TASK_FAILED or not body.get("run_id"):
        return body
    from include.stocksync import freeze

    try:
        # a savepoint inside the sender's transaction (which holds the alert row's lock): a failed
        # read here leaves that transaction usable
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            run = cur.execute(query("stocksync/select_sync_run"), {"run_id": body["run_id"]}).fetchone()
            if run is not None and run["dag_id"] != body.get("dag_id"):
                run = None  # the run id is another DAG's record: this run was refused
            checks = cur.execute(query("stocksync/select_dq_results"),
                                 {"run_id": body["run_id"]}).fetchall() if run else []
            held = freeze.active_freezes(conn, set_by=str(body["run_id"])) if run else []
        frozen_until = max((row[5] for row in held), default=None)
        return compose(body, run, checks, frozen_until)
    except Exception:  # the alert matters more than its wording
        log.exception("stocksync: could not word the alert for run %s; sending it as recorded", body.get("run_id"))
        return body


def summarize_with(dsn: str, body: dict[str, Any]) -> dict[str, Any]:
    """`summarize` on a connection of its own (an alert sent at once by the notifier)."""
    from include.stocksync.db import connect

    try:
        with connect(dsn, connect_timeout=5) as conn:
            return summarize(conn, body)
    except Exception:
        log.exception("stocksync: could not word the alert for run %s; sending it as recorded", body.get("run_id"))
        return body
