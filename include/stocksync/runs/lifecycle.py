"""A run's life: its steps, its heartbeat, its time budget, and what happens when it dies.

- **Steps.** `step()` gives each step of a run its connection and transaction: it refuses a run
  that is dead or out of budget, beats while the step runs, commits what the step did or records
  its failure on the run record (`record.py`).

- **Heartbeat.** Every step writes `sync_runs.heartbeat_at` when it starts and ends, and a
  heartbeat thread on its own connection writes it every `operations.heartbeat_interval_seconds`
  while the step runs (a long extract or apply). A run whose teardown has not closed it and whose
  heartbeat is older than `ops_settings.heartbeat_bound()` is dead, whatever killed it: only the
  run record in PostgreSQL is consulted, never a process id or a host, so this holds for the
  LocalExecutor, `dag.test()` and Celery workers on other machines alike.
- **Orphaned freezes.** A freeze set by a sync run that is not alive any more is released by the
  next run of either sync DAG in its setup (which waits, within `holder_wait_seconds`, for a live
  holder, then refuses) and teardown, and by the watchdog. Alive or dead is judged from evidence
  (`judge`): the run record and what Airflow says of the holder's run and tasks, so a run whose
  lost task Airflow is about to retry is never declared dead. The dead run is closed as
  `abandoned` with a note saying who found it and how long checkout was closed; the finder
  records a warning and queues an alert. A freeze whose `set_by` is not a sync run (a manual
  maintenance freeze) is never touched.
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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from include.stocksync.config.operations import MIN_STEP_SECONDS, OperationsSettings, heartbeat_bound
from include.stocksync.domain.errors import PermanentError, is_permanent
from include.stocksync.runs import record as runs
from include.stocksync.shop import freeze
from include.stocksync.store.db import connect, execute_file

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

ABANDONED = "abandoned"
# A try of a task that ended without recording anything (its worker or process was lost) and that
# Airflow retried: a warning on the run and an alert, found by the retry.
LOST_TRY = "task_lost"
# A warning on a run that ended while another run's freeze, its holder not proven dead, kept checkout closed.
CHECKOUT_HELD = "checkout_held"
WATCHDOG = "stocksync_watchdog"


class RunAbandoned(PermanentError):
    """The run was declared dead (no heartbeat for too long) and its freeze released: it may not go on."""


class HolderAlive(PermanentError):
    """Another stocksync run holds checkout closed and is alive past the wait: this run does not start."""


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
    """Called by `step` in the step's transaction before the step's work: refuses a run that
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


@contextmanager
def step(dsn: str, run_id: str, name: str, *, retries: list[str] | None = None,
         keep_on_failure: tuple[type[BaseException], ...] = ()) -> Iterator[psycopg.Connection]:
    """The connection and transaction of one step: re-opens a run an earlier attempt marked
    failed, records the step's duration, commits what the step did. On failure the step's work
    is rolled back, except for the `keep_on_failure` errors (a failed validation keeps the checks
    it recorded), and the failure is recorded on a fresh connection (the step's own may be what
    died), keeping the run's first cause and appending this attempt with `retries`."""
    started = time.perf_counter()
    with connect(dsn) as conn:
        execute_file(conn, "stocksync/update_sync_run_reopen", {"run_id": run_id})
        conn.commit()
        beat: Heartbeat | None = None
        try:
            # --- a dead or out-of-budget run stops here; the step beats while it runs ---
            guard = enter_step(conn, run_id, name)
            conn.commit()
            beat = Heartbeat(dsn, run_id, guard.operations.heartbeat_interval_seconds).__enter__()
            # --- end: a dead or out-of-budget run stops here; the step beats while it runs ---
            yield conn
        except BaseException as exc:
            if beat is not None:
                beat.stop()
            try:
                if isinstance(exc, keep_on_failure):
                    conn.commit()
                else:
                    conn.rollback()
            except psycopg.Error:
                pass  # the connection is gone; the failure is recorded on a new one below
            # a failed try whose retry cannot finish within the budget fails permanently
            spent = past_budget(dsn, run_id, name, exc)
            runs.record_failure(dsn, run_id, name, spent or exc, time.perf_counter() - started, retries)
            if spent is not None:
                raise spent from exc
            raise
        finally:
            if beat is not None:
                beat.stop()
        runs.record_stage(conn, run_id, name, time.perf_counter() - started)
        conn.commit()


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


def _declare_dead(conn: psycopg.Connection, shop: freeze.Shop, *, run_id: str, dag_id: str, status: str,
                  silent: float, found_by: str, why: str, bound: float) -> Released | None:
    """Release the dead run's freezes and close it as abandoned (or keep its applied result).
    None when someone else got there first."""
    released = freeze.release_freezes(shop, set_by=run_id)
    window = freeze.freeze_seconds(shop, set_by=run_id) if released else None
    freed = f"; released its {released} freeze(s) after {window:.0f} s of closed checkout" if released else ""
    note = (f"declared dead by {found_by}: {why} (no heartbeat for {silent:.0f} s, bound {bound:.0f} s){freed}")
    done = runs.declare_abandoned(conn, run_id, note=note, freeze_seconds=window,
                                  warning={"kind": "abandoned", "found_by": found_by, "note": note})
    if done is None and not released:
        return None
    return Released(run_id, dag_id, status, silent, released, window or 0.0, note)


# ------------------------------------------------------------------ what Airflow says of a run

# Task states in which Airflow is about to run a task of the run (a retry of a lost worker's task
# included): a run with one of these is never declared dead for its silence.
AIRFLOW_DUE = frozenset({"scheduled", "queued", "up_for_retry", "up_for_reschedule", "deferred", "restarting"})
# A task with no state yet waits for its upstream tasks.
AIRFLOW_WAITING = frozenset({None, "none"})
AIRFLOW_FINISHED_RUN = frozenset({"success", "failed"})


@dataclass(frozen=True)
class AirflowView:
    """Airflow's view of one DAG run: its state (None: Airflow has no such run) and its tasks'."""

    run_state: str | None
    task_states: dict[str, str | None]


AirflowLookup = Callable[[str, str], "AirflowView | None"]


@dataclass(frozen=True)
class Verdict:
    """What the evidence says of a run holding a freeze: `dead` (release it), or `live` (wait)."""

    dead: bool
    why: str


def judge(*, status: str, closed: bool, silent: float, view: AirflowView | None, settings: Settings) -> Verdict:
    """Dead or alive, from the run record and Airflow's view (docs/operations.md, "A freeze held by
    another run"):

    - its record is closed or abandoned, or Airflow says its DAG run finished: dead;
    - Airflow runs one of its tasks or is about to (queued, up for retry ...) and it beat within the
      heartbeat bound: alive. The bound exceeds a lost worker's recovery (Airflow's heartbeat
      timeout + retry delay + start), so a run Airflow is about to retry is never taken for dead;
    - Airflow shows none of its tasks running, due or waiting for upstream, and it has not beaten for
      `dead_after_beats` beats: dead (nothing will run it again);
    - silent past the heartbeat bound with nothing of it due: dead (a task Airflow still shows
      running past the bound lost its process where nothing retries it, e.g. under `dag.test()`);
    - without Airflow to ask: dead once silent past the heartbeat bound."""
    ops, bound = settings.operations, heartbeat_bound(settings)
    few = ops.dead_after_beats * ops.heartbeat_interval_seconds
    if closed or status == ABANDONED:
        return Verdict(True, f"its record is {status} and closed, but its freeze was never released")
    if view is None:
        if silent > bound:
            return Verdict(True, f"its record says {status} but the run stopped beating")
        return Verdict(False, f"it beat {silent:.0f} s ago (bound {bound:.0f} s)")
    if view.run_state in AIRFLOW_FINISHED_RUN:
        return Verdict(True, f"Airflow says its run is {view.run_state}, but its freeze was never released")
    running = sorted(task for task, state in view.task_states.items() if state == "running")
    due = sorted(task for task, state in view.task_states.items() if state in AIRFLOW_DUE)
    if silent > bound and not due:
        doing = f"Airflow still shows {', '.join(running)} running" if running else "nothing of it runs in Airflow"
        return Verdict(True, f"{doing} but it has not beaten for {silent:.0f} s, past the {bound:.0f} s within "
                             "which Airflow retries a lost worker's task")
    waiting = [task for task, state in view.task_states.items() if state in AIRFLOW_WAITING]
    if not running and not due and not waiting and silent > few:
        return Verdict(True, f"Airflow has none of its tasks running or due (run {view.run_state or 'unknown'}) "
                             f"and it has not beaten for {silent:.0f} s ({ops.dead_after_beats} beats)")
    what = (f"Airflow is about to run {', '.join(due[:3])}" if due else
            f"Airflow runs {', '.join(running)}" if running else
            f"its run is {view.run_state}" if view.run_state else "Airflow knows no such run")
    return Verdict(False, f"{what}; it beat {silent:.0f} s ago (bound {bound:.0f} s)")


@dataclass(frozen=True)
class Holder:
    """Another run whose freeze keeps checkout closed and that the evidence says is alive."""

    run_id: str
    dag_id: str
    silent_seconds: float
    expires_at: Any
    why: str
    stopped_beating: bool  # silent for `dead_after_beats` beats: not proven dead, but not beating

    def as_warning(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "run_id": self.run_id, "dag_id": self.dag_id,
                "silent_seconds": round(self.silent_seconds, 1), "expires_at": str(self.expires_at),
                "note": f"checkout is closed by run {self.run_id} of {self.dag_id} (freeze expires "
                        f"{self.expires_at}): {self.why}"}


def release_orphan_freezes(conn: psycopg.Connection, settings: Settings, *, found_by: str,
                           lookup: AirflowLookup | None = None, live: list[Holder] | None = None,
                           shop: freeze.Shop | None = None) -> list[Released]:
    """Release every active freeze whose run the evidence says is dead (never `found_by`'s own,
    never one that is not a sync run's); append the holders judged alive to `live`. The caller
    records the result and commits. `shop`: the shop port (none: the shop in `conn`'s database)."""
    shop = conn if shop is None else shop
    active = {f.set_by: f.expires_at for f in freeze.active_freezes(shop) if f.set_by and f.set_by != found_by}
    if not active:
        return []
    bound = heartbeat_bound(settings)
    rows = execute_file(conn, "stocksync/select_run_liveness", {
        "run_ids": sorted(active), "dag_ids": list(settings.operations.watched_dag_ids)}).fetchall()
    found = []
    for run_id, dag_id, status, closed, _, silent in rows:
        view = lookup(dag_id, run_id) if lookup is not None and not closed else None
        verdict = judge(status=status, closed=closed, silent=silent, view=view, settings=settings)
        if not verdict.dead:
            if live is not None:
                few = settings.operations.dead_after_beats * settings.operations.heartbeat_interval_seconds
                live.append(Holder(run_id, dag_id, silent, active[run_id], verdict.why, silent > few))
            continue
        dead = _declare_dead(conn, shop, run_id=run_id, dag_id=dag_id, status=status, silent=silent,
                             found_by=found_by, why=verdict.why, bound=bound)
        if dead is not None:
            found.append(dead)
    return found


def reap_dead_runs(conn: psycopg.Connection, settings: Settings, *, found_by: str = WATCHDOG,
                   limit: int = 50, lookup: AirflowLookup | None = None,
                   shop: freeze.Shop | None = None) -> list[Released]:
    """Declare dead every watched run that is not closed and has been silent past the bound
    (releasing its freezes), unless Airflow is about to run one of its tasks (a retry of a lost
    worker's task). The caller records the result and commits. `shop`: the shop port (none: the
    shop in `conn`'s database)."""
    bound = heartbeat_bound(settings)
    rows = execute_file(conn, "stocksync/select_dead_runs", {
        "dag_ids": list(settings.operations.watched_dag_ids), "bound_seconds": bound, "limit": limit}).fetchall()
    found = []
    for run_id, dag_id, status, _, silent in rows:
        view = lookup(dag_id, run_id) if lookup is not None else None
        verdict = judge(status=status, closed=False, silent=silent, view=view, settings=settings)
        if not verdict.dead:
            log.info("run %s is silent for %.0f s but not dead: %s", run_id, silent, verdict.why)
            continue
        dead = _declare_dead(conn, conn if shop is None else shop, run_id=run_id, dag_id=dag_id, status=status,
                             silent=silent, found_by=found_by, why=f"its teardown never closed it; {verdict.why}",
                             bound=bound)
        if dead is not None:
            found.append(dead)
    return found
