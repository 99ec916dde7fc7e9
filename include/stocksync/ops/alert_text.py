"""A failure alert someone can read on a phone: what failed, why (the first cause), what
checkout is doing now, and the link to the run's page; the full error stays in the report.

A task-failure alert is rendered when the task fails, but sent later (after the run's teardown
released its freeze, or by the watchdog when the teardown never ran: `delivery.py`), so what
checkout is doing is only known when it is sent. `summarize` is called right before a send, on the
sender's connection: it reads the run record (its first cause, its guardrails and checks) and the
run's active freeze, and sets the payload's `text` and the fields `summary`, `cause`, `checkout` and
`checkout_closed_until` (ISO time or null). Alerts of other kinds keep their own text.

`for_chat` is what the webhook gets, whatever the kind: chat clients (Slack-style mrkdwn, Markdown
in Mattermost, Teams, Discord) turn `<url|label>`, `[label](url)`, bare URLs and `@channel` into
links and mentions, and the text quotes WMS data (SKUs, error messages) and run ids. So every
string is neutralised there (`&`, `<`, `>` escaped as Slack requires, link and mention syntax
broken), the report is linked only by its URL on the Airflow server (`[api] base_url`), and the
server's local report path is left out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.domain.text import INVISIBLE
from include.stocksync.runs import runview
from include.stocksync.runs.checks import with_sku_examples
from include.stocksync.runs.wording import local_time, shorten
from include.stocksync.shop.port import ShopPort
from include.stocksync.store.db import query

log = logging.getLogger(__name__)

TASK_FAILED = "task_failed"
MAX_SENTENCE = 240
# the keys a webhook never gets: the report's path on the server's disk (alerts.ALERT_PAYLOAD)
LOCAL_ONLY = ("report",)
NO_LINK = "(no link to the run's page: set Airflow's [api] base_url to its public URL)"
MENTION = re.compile(r"@(?=\w)")            # @channel, @here, @everyone, @someone
URL_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,20}):(?=//)")  # https://, ftp://, javascript://
MD_LINK = re.compile(r"\]\s*\(")             # [label](url)
SAFE_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$'()*+,;=%-]+")


def checkout_now(run: Mapping[str, Any] | None, frozen_until: datetime | None, known: bool = True) -> str:
    """Checkout as this run leaves it, right now (`known` False: the shop's freezes could not be read)."""
    if frozen_until is not None:
        return (f"still closed by this run until {local_time(frozen_until, zone=True)} at the latest "
                "(its freeze expires then; its teardown releases it sooner)")
    if not known and run is not None and run.get("freeze_mode") != "none":
        return "unknown (the shop's freezes could not be read; see the run's page)"
    if run is None or not run.get("freeze_seconds"):
        return "open (this run never closed it)"
    return "open again (released by the run's teardown)"


def compose(body: Mapping[str, Any], run: Mapping[str, Any] | None, checks: list[dict[str, Any]],
            frozen_until: datetime | None, freeze_known: bool = True) -> dict[str, Any]:
    """The payload with its phone-sized `text` (pure: the unit tests call it). `run` is the run's
    record (None when it has none: refused at its first task)."""
    dag_id, run_id = str(body.get("dag_id") or ""), str(body.get("run_id") or "")
    error = body.get("first_cause") or body.get("error")
    if run is not None:
        story = runview.story({**run, "recorded": True}, checks=checks, base="")
    else:
        story = runview.story({"dag_id": dag_id, "run_id": run_id, "recorded": False}, base="",
                              failed_task=str(body.get("task_id") or "freeze_checkout"), error=error)
    checkout = checkout_now(run, frozen_until, freeze_known)
    sentence = shorten(story.sentence, MAX_SENTENCE)
    text = f"stocksync {runview.dag_label(dag_id)} ({dag_id}): {sentence} Checkout: {checkout}."
    return {**body, "text": text, "summary": story.sentence, "cause": story.cause,
            "step": story.step, "checkout": checkout,
            "checkout_closed_until": frozen_until.isoformat() if frozen_until else None}


def neutral(text: str) -> str:
    """`text` (data: WMS strings, run ids, errors) as chat shows it, never as markup: `&`, `<`, `>`
    escaped as Slack requires (so `<https://x|click>` and `<!here>` stay text), `](` of a Markdown
    link split, a URL's `scheme://` defanged to `scheme[:]//` (no client auto-links it), `@` before a
    name made a non-mention (a zero-width space after it), and every character a reader cannot see
    or that reorders the text around it (controls, line breaks and tabs included, bidi overrides,
    line separators: `domain.text.INVISIBLE`) as a space: a chat integration that shows more than
    the alert's one-line `text` (an attachment, a card) must not show a forged second line."""
    text = INVISIBLE.sub(" ", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = MD_LINK.sub("] (", text)
    text = URL_SCHEME.sub(r"\1[:]", text)
    return MENTION.sub("@\u200b", text)


def _neutral_value(value: Any) -> Any:
    if isinstance(value, str):
        return neutral(value)
    if isinstance(value, Mapping):
        return {str(k): _neutral_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_neutral_value(v) for v in value]
    return value


def report_link(body: Mapping[str, Any]) -> str | None:
    """The run page's URL on the Airflow server when it is an absolute http(s) URL made only of URL
    characters (`runs.reports.report_url` quotes the ids); None without `[api] base_url` (a bare path)."""
    url = str(body.get("report_url") or "")
    return url if SAFE_URL.fullmatch(url) else None


def for_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The alert as a webhook gets it: every string neutralised (`neutral`), the local report path
    left out, and the text ending with the run page's URL on the Airflow server (or with what to
    configure to get one). The alert's record keeps the body as it was."""
    link = report_link(body)
    sent = {k: _neutral_value(v) for k, v in body.items() if k not in (*LOCAL_ONLY, "report_url")}
    text = str(sent.get("text") or "stocksync alert")
    sent["text"] = f"{text} {link}" if link else f"{text} {NO_LINK}"
    sent["report_url"] = link
    return sent


def summarize(conn: psycopg.Connection, body: dict[str, Any], shop: ShopPort | None = None) -> dict[str, Any]:
    """`body` with its phone-sized text, read on `conn` (stocksync's own database) right before it
    is sent, the run's freeze read from `shop` (none: the reference shop in `conn`'s database); a
    task-failure alert only. Never raises: on any problem the alert goes as it was recorded."""
    if (body.get("kind") or TASK_FAILED) != TASK_FAILED or not body.get("run_id"):
        return body
    from include.stocksync.shop import freeze

    try:
        # a savepoint inside the sender's transaction (which holds the alert row's lock): a failed
        # read here leaves that transaction usable
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            run = cur.execute(query("stocksync/select_sync_run"), {"run_id": body["run_id"]}).fetchone()
            if run is not None and run["dag_id"] != body.get("dag_id"):
                run = None  # the run id is another DAG's record: this run was refused
            checks = with_sku_examples(cur, run, cur.execute(query("stocksync/select_dq_results"),
                                                              {"run_id": body["run_id"]}).fetchall()) if run else []
        held = _held_freezes(freeze, conn if shop is None else shop, str(body["run_id"])) if run else []
        frozen_until = max((row[5] for row in held or ()), default=None)
        return compose(body, run, checks, frozen_until, freeze_known=held is not None)
    except Exception:  # the alert matters more than its wording
        log.exception("stocksync: could not word the alert for run %s; sending it as recorded", body.get("run_id"))
        return body


def _held_freezes(freeze: Any, shop: ShopPort | psycopg.Connection, run_id: str) -> list[Any] | None:
    """The run's freezes still closing checkout, read from the shop; None when it cannot be read
    (the alert then says checkout's state is unknown, never "open", and goes out all the same)."""
    try:
        return list(freeze.active_freezes(shop, set_by=run_id))
    except Exception as exc:  # the wording is best effort; the alert goes out either way
        log.info("stocksync: the alert for run %s cannot say whether checkout is closed: %s", run_id, exc)
        return None


def summarize_with(dsn: str, body: dict[str, Any], shop: ShopPort | None = None) -> dict[str, Any]:
    """`summarize` on a connection of its own (an alert sent at once by the notifier)."""
    from include.stocksync.store.db import connect

    try:
        with connect(dsn, connect_timeout=5) as conn:
            return summarize(conn, body, shop)
    except Exception:
        log.exception("stocksync: could not word the alert for run %s; sending it as recorded", body.get("run_id"))
        return body
