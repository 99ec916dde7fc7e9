"""The intraday sync (`inventory_intraday_sync`): apply what changed in the WMS since the last
applied sequence, between two nightly syncs (docs/order-push-and-intraday.md).

The steps mirror the nightly's, on a delta instead of a snapshot, and share its machinery:

1. `open_intraday`: the run record (`stocksync.sync_runs`, this DAG's id) with the run's spec,
   freeze mode `none` (checkout is never frozen: the apply's own table lock is all it takes).
   While a full sync (nightly or push) is running the run ends `skipped`, recorded;
2. `read_feed`: the change feed after our position (`ChangeFeedSource`) into a staging table
   through `extract.py`, like any source. A gap (the feed no longer reaches our sequence, its
   sequences jump, the WMS went back) ends the run as `gap`: nothing is guessed or written, the
   caller alerts once per gap, and the next full sync repairs it. A feed that *stalls* (gives
   nothing new while the WMS's newest sequence is further on) ends the run `stalled` (or, when
   changes were read before it, applied with the stall noted) and alerts once per stall (not once
   per run while it lasts). A walk stopped by a bound of ours (`feed_max_events`, the deadline) and
   stale or repeated events the walk skipped are warnings on the run record;
3. `validate_delta`: the nightly's checks, scaled to a delta (`validate_counts(delta=True)`);
4. `merge_delta`: the plan (`build_plan`), judged by a delta guard: no more SKUs zeroed or changed
   than the guardrail shares allow of the whole enabled catalog;
5. `apply_delta`: the same atomic, seq-guarded `apply_plan` with the in-transaction recomputation
   of in-window demand under the stock lock; the feed's `orders_counted_until` is the watermark.

The position is derived, not stored apart: the furthest of the applied intraday runs' last
sequence and the newest sequence of the latest applied full-catalog snapshot
(`loop/select_feed_position.sql`), both written in the transactions that applied them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
import requests
from psycopg.rows import dict_row

from include.stocksync.config.settings import Settings
from include.stocksync.ops import delivery
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.runs.record import OUTCOMES, get_run
from include.stocksync.runs.uow import transaction
from include.stocksync.shop.port import ShopPort
from include.stocksync.store.db import connect, execute_file, query
from include.stocksync.sync import pipeline
from include.stocksync.sync.apply import apply_plan
from include.stocksync.sync.extract import extract_to_staging
from include.stocksync.sync.guardrails import Guardrail, GuardrailFailed, metrics
from include.stocksync.sync.merge import Watermark, build_plan, plan_table
from include.stocksync.sync.validate import ValidationFailed, validate_counts
from include.stocksync.wms.sources.base import SnapshotLimits, WalkBounds
from include.stocksync.wms.sources.feed import ChangeFeedSource, FeedDelta

log = logging.getLogger(__name__)

DAG_ID = "inventory_intraday_sync"
# the walk's figures on its stocksync.feed_runs row (FeedDelta.as_dict keys)
FEED_RUN_FIGURES = ("after_seq", "through_seq", "head_seq", "events", "skus", "pages", "gap", "stalled", "stopped",
                    "stale_events", "stale_seqs", "duplicate_events")
# the alert kind of a stalled feed (one per stall), and the warnings a walk leaves on the run record
FEED_STALLED = "feed_stalled"
FEED_TRUNCATED = "feed_truncated"
FEED_SKIPPED_EVENTS = "feed_skipped_events"


def feed_position(conn: psycopg.Connection, settings: Settings) -> int | None:
    row = execute_file(conn, "loop/select_feed_position",
                       {"full_sync_dag_ids": list(settings.loop.full_sync_dag_ids)}).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def running_full_sync(conn: psycopg.Connection, settings: Settings) -> tuple[str, str] | None:
    row = execute_file(conn, "loop/select_running_full_sync", {
        "full_sync_dag_ids": list(settings.loop.full_sync_dag_ids),
        "stale_seconds": settings.loop.full_sync_stale_seconds}).fetchone()
    return (str(row[0]), str(row[1])) if row else None


def _record_feed(conn: psycopg.Connection, run_id: str, delta: FeedDelta | None, *, skipped: str | None = None,
                 stall_since: str | None = None) -> None:
    """The run's `stocksync.feed_runs` row: the walk's figures, or (no walk) why it did not read."""
    walk = delta.as_dict() if delta else {"after_seq": None, "through_seq": None, "head_seq": None, "events": 0,
                                          "skus": 0, "pages": 0, "gap": None, "stalled": None, "stopped": None,
                                          "stale_events": 0, "stale_seqs": [], "duplicate_events": 0}
    execute_file(conn, "loop/upsert_feed_run", {**{k: walk[k] for k in FEED_RUN_FIGURES}, "run_id": run_id,
                                                "skipped": skipped, "stall_since": stall_since})


def open_intraday(dsn: str, *, run_id: str, settings: Settings, triggered_by: str | None = None) -> dict[str, Any]:
    """Open the run record; end it `skipped` while a full sync is running."""
    settings = settings.model_copy(update={"freeze_mode": "none"})  # never a freeze row
    status = pipeline.open_run(dsn, run_id=run_id, dag_id=DAG_ID, settings=settings, triggered_by=triggered_by)
    if status != "running":
        return {"status": status}
    spec = runs.spec_of(get_run(dsn, run_id))
    with lifecycle.step(dsn, run_id, "open") as conn:
        busy = running_full_sync(conn, spec.settings)
        if busy is not None:
            reason = (f"skipped: full sync {busy[1]} run {busy[0]} is running; the intraday sync does not read or "
                      "write meanwhile (the next intraday run goes on from the full sync's snapshot)")
            _record_feed(conn, run_id, None, skipped=reason)
            runs.record_outcome(conn, run_id, "skipped", reason)
            return {"status": "skipped", "reason": reason}
    return {"status": "running"}


def read_feed(dsn: str, *, run_id: str, session: requests.Session, base_url: str) -> dict[str, Any]:
    """Walk the change feed from our position and stage the delta (see the module docstring).
    Returns `state`: staged | empty | gap | stalled | skipped | finished, and for a new gap the alert
    to send (a stall's alert is queued here, for the teardown to send)."""
    run = get_run(dsn, run_id)
    if run["status"] != "running":
        return {"state": "finished" if runs.is_finished(run) else run["status"], "status": run["status"]}
    settings = runs.spec_of(run).settings
    with lifecycle.step(dsn, run_id, "extract") as conn:
        position = feed_position(conn, settings)
        if position is None:
            reason = ("skipped: no full-catalog sync has been applied yet, so there is no WMS sequence to "
                      "continue from; the nightly sync (or a push of the whole catalog) sets it")
            _record_feed(conn, run_id, None, skipped=reason)
            runs.record_outcome(conn, run_id, "skipped", reason)
            return {"state": "skipped", "reason": reason}
        limits = SnapshotLimits(timedelta(seconds=settings.clock_skew_seconds),
                                timedelta(seconds=settings.max_snapshot_age_seconds))
        source = ChangeFeedSource(session, base_url, after_seq=position, page_size=settings.loop.feed_page_size,
                                  max_events=settings.loop.feed_max_events, timeout=settings.http_timeout_seconds,
                                  attempts=settings.http_attempts, backoff=settings.http_backoff_seconds,
                                  retry_after_max=settings.retry_after_max_seconds, limits=limits)
        walk_started = datetime.now(timezone.utc)
        bounds = WalkBounds(max(1, settings.loop.feed_max_events // settings.loop.feed_page_size + 2),
                            time.monotonic() + settings.loop.feed_deadline_seconds, settings.max_page_bytes)
        delta = source.walk(bounds)
        stall_since = _stall_since(conn, run_id) if delta.stalled else None
        _record_feed(conn, run_id, delta, stall_since=stall_since)
        if delta.gap:
            alerted = execute_file(conn, "loop/select_gap_alerted",
                                   {"after_seq": position, "run_id": run_id}).fetchone()
            runs.record_outcome(conn, run_id, "gap", f"gap in the WMS change feed: {delta.gap}. Nothing was "
                                "applied; the next full sync repairs it")
            return {"state": "gap", "gap": delta.gap, "after_seq": position, "head_seq": delta.head_seq,
                    "alert": None if alerted and alerted[0] else gap_alert(run_id, delta)}
        alerted = _note_walk(conn, run_id, delta, settings=settings, stall_since=stall_since)
        if delta.stalled and not delta.items:
            runs.record_outcome(conn, run_id, "stalled", f"the WMS change feed stalled: {delta.stalled}. Nothing "
                                "was applied; intraday runs go on from this position once the feed moves again")
            return {"state": "stalled", "stalled": delta.stalled, "feed": delta.as_dict(), "alerted": alerted}
        watermark = Watermark("wms", delta.watermark or walk_started)
        if not delta.items:
            runs.record_applied(conn, run_id, "applied", {}, 0, watermark,
                                {"empty_delta": True, "feed": delta.as_dict()})
            return {"state": "empty", "feed": delta.as_dict()}
        result = extract_to_staging(conn, source, run_id, bounds=bounds, limits=limits)
        # the fallback watermark is when the walk started, not when staging did (orders the WMS received
        # during the walk may be missing from the delta: they must count as not counted)
        result = dataclasses.replace(result, request_started_at=walk_started)
        if delta.stopped or delta.stalled:
            result = dataclasses.replace(result, **cut_short_watermark(delta, walk_started, settings))
        runs.record_extract(conn, run_id, result)
    return {"state": "staged", "feed": delta.as_dict(), "staging_table": result.staging_table,
            "rows": result.rows}


def cut_short_watermark(delta: FeedDelta, walk_started: datetime, settings: Settings) -> dict[str, Any]:
    """The watermark of a delta whose walk stopped (a bound of ours) or stalled before the WMS's
    newest change. The time the walk started is no bound then: changes older than it are still
    unread, among them the allocation of an order acknowledged before it, which would count as
    already in the figures read (oversell). The last page's own `orders_counted_until` is sound (the
    WMS says every order it had by then has its changes at or below that page), whatever
    `watermark_source` says; without it no order of the window counts as counted (the shop may be
    under-stated until the walk reaches the head, never over-stated)."""
    sound = delta.watermark or walk_started - timedelta(hours=settings.unsent_order_cutoff_hours)
    return {"orders_counted_until": sound, "request_started_at": min(walk_started, sound)}


def _stall_since(conn: psycopg.Connection, run_id: str) -> str:
    """The run that began the stall this run's walk continues (itself when the run before did not stall)."""
    row = execute_file(conn, "loop/select_stall_since", {"run_id": run_id}).fetchone()
    return str(row[0]) if row and row[0] else run_id


def _note_walk(conn: psycopg.Connection, run_id: str, delta: FeedDelta, *, settings: Settings,
               stall_since: str | None) -> bool:
    """What the walk ran into that someone should know, on the run record (its warnings: the report
    and the Stock sync page show them) and in the log; a stall also alerts, once per stall (its
    first run's alert; `delivery` sends it after the run's teardown). True when this run alerted."""
    if delta.stopped:
        log.warning("run %s: the change feed walk stopped early: %s", run_id, delta.stopped)
        runs.add_warning(conn, run_id, {"kind": FEED_TRUNCATED, "through_seq": delta.through_seq,
                                        "note": f"the change feed walk stopped early: {delta.stopped}"})
    if delta.stale_events or delta.duplicate_events:
        note = skipped_events_note(delta)
        log.warning("run %s: %s", run_id, note)
        runs.add_warning(conn, run_id, {"kind": FEED_SKIPPED_EVENTS, "stale_events": delta.stale_events,
                                        "duplicate_events": delta.duplicate_events, "note": note})
    if not delta.stalled:
        return False
    log.warning("run %s: the WMS change feed stalled (since run %s): %s", run_id, stall_since, delta.stalled)
    if delta.items:  # what was read before the stall is applied: the run ends applied, with the stall noted
        runs.add_warning(conn, run_id, {"kind": FEED_STALLED, "note": f"the WMS change feed stalled: {delta.stalled}"})
    subject = f"{FEED_STALLED}:{stall_since}"
    if delivery.already_alerted(conn, FEED_STALLED, subject):
        return False
    delivery.queue(conn, settings, stall_alert(run_id, delta, str(stall_since)), queued_by=run_id,
                   subject=subject)
    return True


def skipped_events_note(delta: FeedDelta) -> str:
    parts = []
    if delta.stale_events:
        shown = ", ".join(str(seq) for seq in delta.stale_seqs)
        more = "…" if delta.stale_events > len(delta.stale_seqs) else ""
        parts.append(f"{delta.stale_events} stale event{'s' if delta.stale_events != 1 else ''} skipped (at or "
                     f"below the sequence they were read after, already read: seq {shown}{more})")
    if delta.duplicate_events:
        parts.append(f"{delta.duplicate_events} event{'s' if delta.duplicate_events != 1 else ''} served twice on "
                     "a page, read once")
    return "the WMS change feed redelivered events: " + "; ".join(parts)


def stall_alert(run_id: str, delta: FeedDelta, stall_since: str) -> dict[str, Any]:
    applied = f"The {delta.events} changes read before it are applied" if delta.items else "Nothing was applied"
    return delivery.payload(
        kind=FEED_STALLED, dag_id=DAG_ID, run_id=run_id, task_id="read_change_feed", error=str(delta.stalled),
        text=f"stocksync: the WMS change feed stalled ({DAG_ID} run {run_id}): {delta.stalled}. {applied}; the "
             "WMS changes after it reach the shop when the feed moves again, or with the next full sync "
             "(inventory_nightly_sync). One alert per stall: the next one only after the feed has moved again",
        after_seq=delta.after_seq, through_seq=delta.through_seq, head_seq=delta.head_seq, stall_since=stall_since,
        stalled=delta.stalled)


def gap_alert(run_id: str, delta: FeedDelta) -> dict[str, Any]:
    return {
        "text": f"stocksync: gap in the WMS change feed ({DAG_ID} run {run_id}): {delta.gap}. Nothing was applied; "
                "intraday runs stop at this position until the next full sync (inventory_nightly_sync, or "
                "inventory_full_push of the whole catalog) repairs it",
        "kind": "feed_gap", "dag_id": DAG_ID, "run_id": run_id, "after_seq": delta.after_seq,
        "head_seq": delta.head_seq, "gap": delta.gap,
    }


def _running(dsn: str, run_id: str) -> tuple[dict[str, Any], Settings] | None:
    run = get_run(dsn, run_id)
    if run["status"] != "running" or not run.get("staging_table"):
        return None
    return run, runs.spec_of(run).settings


def validate_delta(dsn: str, *, run_id: str, shop: ShopPort | None = None) -> dict[str, Any] | None:
    """The nightly's data-quality suite on the staged delta, scaled (no row-count band)."""
    found = _running(dsn, run_id)
    if found is None:
        return None
    run, settings = found
    with lifecycle.step(dsn, run_id, "validate", keep_on_failure=(ValidationFailed,)) as conn:
        try:
            result = validate_counts(conn, run_id, run["staging_table"], settings, delta=True, shop=shop)
        except ValidationFailed:
            runs.record_validation(conn, run_id, False)
            raise
        runs.record_validation(conn, run_id, True, result.valid, result.quarantined)
    return {"rows": result.rows, "valid": result.valid, "quarantined": result.quarantined}


def delta_guard(figures: dict[str, int], settings: Settings) -> list[Guardrail]:
    """The guardrails a delta can break: SKUs zeroed and SKUs changed, judged against the whole
    enabled catalog (a delta changes few SKUs, but each of them may change: shares of the delta
    would stop every receipt wave)."""
    limits = settings.guardrails
    enabled = max(figures["enabled_catalog"], 1)
    changed = figures["changing"] / enabled
    zeroed = figures["zeroed"] / enabled
    return [
        Guardrail("max_changed_share", changed, limits["max_changed_share"], changed <= limits["max_changed_share"],
                  f"{figures['changing']} SKUs would change: {changed * 100:.2f}% of the {enabled} enabled SKUs "
                  f"(at most {limits['max_changed_share'] * 100:.1f}%)"),
        Guardrail("max_zeroed_share", zeroed, limits["max_zeroed_share"], zeroed <= limits["max_zeroed_share"],
                  f"{figures['zeroed']} SKUs would drop from in stock to 0: {zeroed * 100:.2f}% of the {enabled} "
                  f"enabled SKUs (at most {limits['max_zeroed_share'] * 100:.1f}%)"),
    ]


def merge_delta(dsn: str, *, run_id: str, shop: ShopPort | None = None) -> dict[str, Any] | None:
    found = _running(dsn, run_id)
    if found is None:
        return None
    run, settings = found
    with lifecycle.step(dsn, run_id, "merge", keep_on_failure=(GuardrailFailed,)) as conn:
        plan = build_plan(conn, run_id, run["staging_table"], settings, pipeline.run_watermark(run, settings),
                          shop=shop)
        guards = delta_guard(metrics(conn, plan.plan_table), settings)
        with conn.cursor() as cur:
            cur.executemany(query("stocksync/upsert_dq_result"), [
                {"run_id": run_id, "check_name": f"guardrail:{g.name}", "success": g.success, "policy": "fail",
                 "observed": g.observed, "examples": orjson.dumps({"value": g.value, "limit": g.limit}).decode()}
                for g in guards])
        runs.record_guardrails(conn, run_id, [g.as_dict() for g in guards], None)
        failed = [g for g in guards if not g.success]
        if failed:
            raise GuardrailFailed(failed)
    return plan.as_dict()


def apply_delta(dsn: str, *, run_id: str, shop: ShopPort | None = None) -> dict[str, Any] | None:
    """The atomic, seq-guarded apply; no freeze (the apply's table lock only)."""
    run = get_run(dsn, run_id)
    if not run.get("staging_table"):
        return None  # nothing was staged: skipped, a gap, or an empty delta
    if runs.is_finished(run):
        return {"status": "already_applied", "counts": {k: run[k] for k in OUTCOMES if run.get(k)}}
    if run["status"] != "running":
        return None
    settings = runs.spec_of(run).settings
    with lifecycle.step(dsn, run_id, "load") as conn:
        result = apply_plan(conn, run_id=run_id, snapshot_id=run["snapshot_id"], plan_table=plan_table(run_id),
                            settings=settings, watermark=pipeline.run_watermark(run, settings), shop=shop)
    return result.as_dict()


def close(dsn: str, *, run_id: str, lookup: lifecycle.AirflowLookup | None = None,
          shop: ShopPort | None = None) -> dict[str, Any]:
    """The teardown: close the record, write the report, drop expired staging (as the nightly's);
    `lookup` as for `pipeline.release_freeze`."""
    return pipeline.release_freeze(dsn, run_id=run_id, dag_id=DAG_ID, lookup=lookup, shop=shop)


def mark_gap_alerted(dsn: str, run_id: str) -> None:
    with transaction(dsn) as conn:
        execute_file(conn, "loop/update_feed_run_alerted", {"run_id": run_id})


def run_once(dsn: str, settings: Settings, *, run_id: str, session: requests.Session, base_url: str,
             shop: ShopPort | None = None) -> dict[str, Any]:
    """Every step in order outside Airflow (tests, benchmark): what the DAG does, minus alerts.
    `dsn` is stocksync's own database; `shop` the shop port (None: the shop in that database)."""
    summary: dict[str, Any] = {"open": open_intraday(dsn, run_id=run_id, settings=settings)}
    try:
        summary["read"] = read_feed(dsn, run_id=run_id, session=session, base_url=base_url)
        summary["validate"] = validate_delta(dsn, run_id=run_id, shop=shop)
        summary["merge"] = merge_delta(dsn, run_id=run_id, shop=shop)
        summary["apply"] = apply_delta(dsn, run_id=run_id, shop=shop)
    finally:
        summary["close"] = close(dsn, run_id=run_id, shop=shop)
    return summary


def feed_run(dsn: str, run_id: str) -> dict[str, Any] | None:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("loop/select_feed_run"), {"run_id": run_id}).fetchone()
