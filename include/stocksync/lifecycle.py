"""A run's life: its heartbeat, its time budget, and what happens when it dies (issue 12).

- **Heartbeat.** Every step writes `sync_runs.heartbeat_at` when it starts and ends, and a
  heartbeat thread on its own connection writes it every `operations.heartbeat_interval_seconds`
  while the step runs (a long extract or apply). A run whose teardown has not closed it and whose
  heartbeat is older than `ops_settings.heartbeat_bound()` is dead, whatever killed it: only the
  run record in PostgreSQL is consulted, never a process id or a host, so this holds for the
  LocalExecutor, `dag.test()` and Celery workers on other machines alike.
- **Orphaned freezes.** A freeze set by a sync run that is not alive any more (dead as above,
  closed by its teardown, or declared dead) is released by the next run of either sync DAG in its
  setup, and by the watchdog. The dead run is closed as `abandoned` with a note saying who found it
  and how long checkout was closed; the finder records a warning and queues an alert. A freeze whose
  `set_by` is not a sync run (a manual maintenance freeze) is never touched.
- **Time budget.** In full freeze mode a run must be done by its freeze's expiry (`budget_until`,
  the TTL of `ops_settings.freeze_ttl()`): a step that cannot start within it, or a failed try
  whose retry could not finish within it, fails permanently, so the teardown releases at once.
  Steps also cut their own timeouts to it (the extract's walk deadline, the apply's lock wait,
  `statement_timeout`).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from include.stocksync import delivery, freeze, runs
from include.stocksync.db import connect, execute_file
from include.stocksync.errors import PermanentError, is_permanent
from include.stocksync.ops_settings import MIN_STEP_SECONDS, OperationsSettings, heartbeat_bound

if TYPE_CHECKING:
    from include.stocksync.settings import Settings

log = logging.getLogger(__name__)

ABANDONED = "abandoned"
WATCHDOG = "stocksync_watchdog"


class RunAbandoned(PermanentError):
    """The run was declared dead (no heartbeat for too long) and its freeze released: it may not go on."""


class BudgetExhausted(PermanentError):
    """A full-mode run cannot finish before its freeze expires: it fails now, so checkout reopens."""


# --------------------------------------------------------------------------------- step guard

@dataclass(frozen=True)
class Guard:
    """What a step learns about its run when it starts."""

    status: str | None
    budget_left: float | None
    operations: OperationsSettings
    max_retry_delay: float


def _guard(conn: psycopg.Connection, run_id: str) -> Guard:
    row = execute_file(conn, "stocksync/select_sync_run_guard", {"run_id": run_id}).fetchone()
    if row is None:
        return Guard(None, None, OperationsSettings(), 0.0)
    status, _, left, settings = row
    settings = settings if isinstance(settings, dict) else json.loads(settings or "{}")
    try:
        ops = OperationsSettings.model_validate(settings.get("operations") or {})
    except ValueError:
        ops = OperationsSettings()
    return Guard(status, left, ops, float(settings.get("max_retry_delay_seconds") or 0.0))


def enter_step(conn: psycopg.Connection, run_id: str, name: str) -> Guard:
    """Called by `runs.step` in the step's transaction before the step's work: refuses a run that
    was declared dead or has no budget left for this step, writes the heartbeat, and bounds every
    statement of the step by the budget left."""
    guard = _guard(conn, run_id)
    if guard.status == ABANDONED:
        raise RunAbandoned(f"run {run_id} was declared dead (no heartbeat for too long) and its freeze released; "
                           "it does not go on: trigger a new run")
    need = _step_need(guard, name)
    if guard.budget_left is not None and guard.budget_left < need:
        raise BudgetExhausted(f"the run's time budget is spent ({max(guard.budget_left, 0):.0f} s left of the "
                              f"full-mode freeze, {name} needs at least {need:.0f} s): failing now so checkout "
                              "reopens (config freeze_ttl_seconds, operations.budget_reserve_seconds)")
    runs.beat(conn, run_id)
    if guard.budget_left is not None:
        execute_file(conn, "stocksync/set_statement_timeout", {"timeout": f"{int(guard.budget_left * 1000)}ms"})
    return guard


def _step_need(guard: Guard, name: str) -> float:
    """Seconds of budget a step needs to start: the extract leaves the reserve to what follows it."""
    return MIN_STEP_SECONDS + (guard.operations.budget_reserve_seconds if name == "extract" else 0.0)


def budget_left(conn: psycopg.Connection, run_id: str) -> float | None:
    return _guard(conn, run_id).budget_left


def past_budget(dsn: str, run_id: str, name: str, exc: BaseException) -> BudgetExhausted | None:
    """For a step that failed with an error a retry could fix: a BudgetExhausted when the retry
    (after up to `max_retry_delay_seconds`) could not finish within the run's budget."""
    if not isinstance(exc, Exception) or is_permanent(exc):
        return None
    try:
        with connect(dsn, connect_timeout=5) as conn:
            guard = _guard(conn, run_id)
    except psycopg.Error:
        return None  # the database is what failed: the retry decides
    if guard.budget_left is None:
        return None
    need = guard.max_retry_delay + _step_need(guard, name)
    if guard.budget_left >= need:
        return None
    return BudgetExhausted(f"{name} failed ({type(exc).__name__}: {str(exc)[:300]}) and a retry cannot finish "
                           f"within the run's time budget ({max(guard.budget_left, 0):.0f} s left, a retry needs "
                           f"{need:.0f} s): failing now so checkout reopens (config freeze_ttl_seconds)")


# ---------------------------------------------------------------------------------- heartbeat

class Heartbeat:
    """Writes the run's heartbeat every `interval` seconds on its own connection until stopped.
    A failed beat (the database restarting) is logged and retried on a new connection; it never
    disturbs the step."""

    def __init__(self, dsn: str, run_id: str, interval: float) -> None:
        self.dsn, self.run_id, self.interval = dsn, run_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stocksync-heartbeat:{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 10)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, application_name="stocksync-heartbeat", connect_timeout=5,
                                           autocommit=True)
                runs.beat(conn, self.run_id)
            except psycopg.Error as exc:
                log.warning("stocksync: heartbeat of run %s failed (%s); retrying", self.run_id, exc)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()


# ------------------------------------------------------------------------------ dead runs

@dataclass(frozen=True)
class Released:
    """A dead run found, and what was done about it."""

    run_id: str
    dag_id: str
    status: str                 # its status before it was declared dead
    silent_seconds: float
    freezes_released: int
    freeze_seconds: float       # how long its freezes kept checkout closed
    note: str

    def as_warning(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "run_id": self.run_id, "dag_id": self.dag_id, "status": self.status,
                "silent_seconds": round(self.silent_seconds, 1), "freezes_released": self.freezes_released,
                "freeze_seconds": round(self.freeze_seconds, 1), "note": self.note}


def _declare_dead(conn: psycopg.Connection, *, run_id: str, dag_id: str, status: str, silent: float,
                  found_by: str, why: str, bound: float) -> Released | None:
    """Release the dead run's freezes and close it as abandoned (or keep its applied result).
    None when someone else got there first."""
    released = freeze.release_freezes(conn, set_by=run_id)
    window = freeze.freeze_seconds(conn, set_by=run_id) if released else None
    freed = f"; released its {released} freeze(s) after {window:.0f} s of closed checkout" if released else ""
    note = (f"declared dead by {found_by}: {why} (no heartbeat for {silent:.0f} s, bound {bound:.0f} s){freed}")
    done = runs.declare_abandoned(conn, run_id, note=note, freeze_seconds=window,
                                  warning={"kind": "abandoned", "found_by": found_by, "note": note})
    if done is None and not released:
        return None
    return Released(run_id, dag_id, status, silent, released, window or 0.0, note)


def release_orphan_freezes(conn: psycopg.Connection, settings: Settings, *, found_by: str) -> list[Released]:
    """Release every active freeze whose run is no longer alive (never `found_by`'s own, never one
    that is not a sync run's). The caller records the result and commits."""
    holders = sorted({row[3] for row in freeze.active_freezes(conn) if row[3] and row[3] != found_by})
    if not holders:
        return []
    bound = heartbeat_bound(settings)
    rows = execute_file(conn, "stocksync/select_run_liveness", {
        "run_ids": holders, "dag_ids": list(settings.operations.watched_dag_ids)}).fetchall()
    found = []
    for run_id, dag_id, status, closed, _, silent in rows:
        if closed or status == ABANDONED:
            why = f"its record is {status} and closed, but its freeze was never released"
        elif silent > bound:
            why = f"its record says {status} but the run stopped beating"
        else:
            continue  # alive: its own teardown releases it
        dead = _declare_dead(conn, run_id=run_id, dag_id=dag_id, status=status, silent=silent, found_by=found_by,
                             why=why, bound=bound)
        if dead is not None:
            found.append(dead)
    return found


def reap_dead_runs(conn: psycopg.Connection, settings: Settings, *, found_by: str = WATCHDOG,
                   limit: int = 50) -> list[Released]:
    """Declare dead every watched run that is not closed and has been silent past the bound
    (releasing its freezes). The caller records the result and commits."""
    bound = heartbeat_bound(settings)
    rows = execute_file(conn, "stocksync/select_dead_runs", {
        "dag_ids": list(settings.operations.watched_dag_ids), "bound_seconds": bound, "limit": limit}).fetchall()
    found = []
    for run_id, dag_id, status, _, silent in rows:
        dead = _declare_dead(conn, run_id=run_id, dag_id=dag_id, status=status, silent=silent, found_by=found_by,
                             why="its teardown never closed it", bound=bound)
        if dead is not None:
            found.append(dead)
    return found


def record_found(conn: psycopg.Connection, settings: Settings, found: list[Released], *, found_by: str,
                 found_by_dag: str, task_id: str, kind: str) -> None:
    """A warning on the finder's run record (when it is a run) and one alert per dead run, queued
    for the finder's teardown (or the watchdog's delivery). The caller commits."""
    for dead in found:
        if found_by != WATCHDOG:
            runs.add_warning(conn, found_by, dead.as_warning(kind))
        text = (f"stocksync: run {dead.run_id} of {dead.dag_id} died without its teardown; "
                + (f"its freeze closed checkout for {dead.freeze_seconds:.0f} s until {found_by} released it"
                   if dead.freezes_released else f"{found_by} closed its record as abandoned"))
        body = delivery.payload(kind=kind, text=text, dag_id=dead.dag_id, run_id=dead.run_id, task_id=task_id,
                                error=dead.note, found_by=found_by, found_by_dag=found_by_dag,
                                freeze_seconds=round(dead.freeze_seconds, 1))
        delivery.queue(conn, settings, body, queued_by=found_by)
