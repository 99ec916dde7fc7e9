"""What a run finds of other runs' deaths, and of its own lost tries, recorded and alerted.

`runs/lifecycle.py` judges runs alive or dead and releases dead runs' freezes; this module
records what was found (a warning on the finder's run record) and queues one alert per finding
(`ops/delivery.py`), for the finder's teardown or the watchdog to send. The run layer never
queues alerts itself, so it does not depend on the alert layer above it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import psycopg

from include.stocksync.ops import delivery
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.runs.uow import transaction
from include.stocksync.shop import freeze

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)


def note_lost_tries(dsn: str, *, run_id: str, dag_id: str, task_id: str, stage: str, try_number: int | None) -> int:
    """Called by a task's try `try_number` before its step: every earlier try of it that recorded
    no failure on the run (`lifecycle.step` records every error, so only a lost worker or a killed
    process leaves none) becomes a warning on the run and a `task_lost` alert, sent by the
    teardown. Returns how many were found now."""
    if not try_number or try_number <= 1:
        return 0
    with transaction(dsn) as conn:
        try:
            run = runs.read_run(conn, run_id)
        except LookupError:
            return 0
        recorded = sum(1 for a in run.get("attempts") or [] if isinstance(a, dict) and a.get("stage") == stage)
        known = sum(1 for w in run.get("warnings") or [] if isinstance(w, dict) and w.get("kind") == lifecycle.LOST_TRY
                    and w.get("task_id") == task_id)
        lost = try_number - 1 - recorded - known
        for _ in range(max(lost, 0)):
            note = (f"a try of {task_id} ended without recording an outcome (its worker or process was lost); "
                    f"Airflow retried it: try {try_number} goes on")
            runs.add_warning(conn, run_id, {"kind": lifecycle.LOST_TRY, "task_id": task_id, "try_number": try_number,
                                            "note": note})
            delivery.queue(conn, runs.spec_of(run).settings, delivery.payload(
                kind=lifecycle.LOST_TRY, text=f"stocksync: run {run_id} of {dag_id}: {note}", dag_id=dag_id,
                run_id=run_id, task_id=task_id, try_number=try_number, error=note), queued_by=run_id)
    return max(lost, 0)


def record_found(conn: psycopg.Connection, settings: Settings, found: list[lifecycle.Released], *, found_by: str,
                 found_by_dag: str, task_id: str, kind: str) -> None:
    """A warning on the finder's run record (when it is a run) and one alert per dead run, queued
    for the finder's teardown (or the watchdog's delivery). The caller commits."""
    for dead in found:
        if found_by != lifecycle.WATCHDOG:
            runs.add_warning(conn, found_by, dead.as_warning(kind))
        text = (f"stocksync: run {dead.run_id} of {dead.dag_id} died without its teardown; "
                + (f"its freeze closed checkout for {dead.freeze_seconds:.0f} s until {found_by} released it"
                   if dead.freezes_released else f"{found_by} closed its record as abandoned"))
        body = delivery.payload(kind=kind, text=text, dag_id=dead.dag_id, run_id=dead.run_id, task_id=task_id,
                                error=dead.note, found_by=found_by, found_by_dag=found_by_dag,
                                freeze_seconds=round(dead.freeze_seconds, 1))
        delivery.queue(conn, settings, body, queued_by=found_by)


def settle_holders(dsn: str, settings: Settings, *, run_id: str, dag_id: str, task_id: str,
                   lookup: lifecycle.AirflowLookup | None, wait: bool,
                   shop: freeze.Shop | None = None) -> tuple[list[lifecycle.Released], list[lifecycle.Holder]]:
    """Another run's freeze found by `run_id` (its setup, `wait=True`; its teardown, `wait=False`):
    a dead holder's freeze is released, recorded and alerted (`orphaned_freeze`) at once; for a
    live one the setup waits up to `operations.holder_wait_seconds`, judging it again every beat
    (and beating itself), then refuses to start (HolderAlive, recorded on the run). Returns the
    dead runs found and the holders still alive."""
    ops = settings.operations
    started = time.monotonic()
    found: list[lifecycle.Released] = []
    while True:
        live: list[lifecycle.Holder] = []
        with transaction(dsn) as conn:
            dead = lifecycle.release_orphan_freezes(conn, settings, found_by=run_id, lookup=lookup, live=live,
                                                    shop=shop)
            record_found(conn, settings, dead, found_by=run_id, found_by_dag=dag_id, task_id=task_id,
                         kind=delivery.ORPHANED_FREEZE)
            runs.beat(conn, run_id)
        for one in dead:
            log.warning("run %s: %s", run_id, one.note)
        found += dead
        waited = time.monotonic() - started
        if not live or not wait:
            return found, live
        if waited >= ops.holder_wait_seconds:
            holder = live[0]
            refused = lifecycle.HolderAlive(
                f"another stocksync run, {holder.run_id} of {holder.dag_id}, keeps checkout closed and is alive "
                f"({holder.why}); this run waited {waited:.0f} s (operations.holder_wait_seconds) and does not "
                "start: trigger it again once that run has ended")
            runs.record_failure(dsn, run_id, "freeze", refused, waited)
            raise refused
        log.info("run %s: waiting for %s (%s)", run_id, ", ".join(h.run_id for h in live), live[0].why)
        time.sleep(min(ops.heartbeat_interval_seconds, max(ops.holder_wait_seconds - waited, 0.1)))
