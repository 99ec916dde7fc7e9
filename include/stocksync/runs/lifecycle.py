"""A run's life: its heartbeat, its time budget, and what happens when it dies (issue 12).

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from include.stocksync.config.operations import MIN_STEP_SECONDS, OperationsSettings, heartbeat_bound
from include.stocksync.domain.errors import PermanentError, is_permanent
from include.stocksync.ops import delivery
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


def note_lost_tries(dsn: str, *, run_id: str, dag_id: str, task_id: str, stage: str, try_number: int | None) -> int:
    """Called by a task's try `try_number` before its step: every earlier try of it that recorded
    no failure on the run (`runs.step` records every error, so only a lost worker or a killed
    process leaves none) becomes a warning on the run and a `task_lost` alert, sent by the
    teardown. Returns how many were found now."""
    if not try_number or try_number <= 1:
        return 0
    with connect(dsn) as conn:
        try:
            run = runs.read_run(conn, run_id)
        except LookupError:
            return 0
        recorded = sum(1 for a in run.get("attempts") or [] if isinstance(a, dict) and a.get("stage") == stage)
        known = sum(1 for w in run.get("warnings") or [] if isinstance(w, dict) and w.get("kind") == LOST_TRY
                    and w.get("task_id") == task_id)
        lost = try_number - 1 - recorded - known
        for _ in range(max(lost, 0)):
            note = (f"a try of {task_id} ended without recording an outcome (its worker or process was lost); "
                    f"Airflow retried it: try {try_number} goes on")
            runs.add_warning(conn, run_id, {"kind": LOST_TRY, "task_id": task_id, "try_number": try_number,
                                            "note": note})
            delivery.queue(conn, runs.spec_of(run).settings, delivery.payload(
                kind=LOST_TRY, text=f"stocksync: run {run_id} of {dag_id}: {note}", dag_id=dag_id, run_id=run_id,
                task_id=task_id, try_number=try_number, error=note), queued_by=run_id)
        conn.commit()
    return max(lost, 0)


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


def airflow_view(dag_id: str, run_id: str) -> AirflowView | None:
    """Ask Airflow (the Task SDK's execution API) for a run's state and its tasks' states. Only
    inside a running task; None elsewhere, or when Airflow cannot say (the caller then judges by
    the heartbeat bound alone)."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        tasks = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id) or {}
        try:
            state = RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        except Exception:  # no such run (e.g. its metadata DB was reset)
            state = None if not tasks else "running"
    except Exception as exc:  # not inside a task (a plain call, the CLI): no Airflow to ask
        log.debug("no Airflow view of %s/%s: %s", dag_id, run_id, exc)
        return None
    return AirflowView(str(state) if state is not None else None,
                       {task: (str(getattr(value, "value", value)) if value is not None else None)
                        for task, value in tasks.items()})


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


def settle_holders(dsn: str, settings: Settings, *, run_id: str, dag_id: str, task_id: str,
                   lookup: AirflowLookup | None, wait: bool,
                   shop: freeze.Shop | None = None) -> tuple[list[Released], list[Holder]]:
    """Another run's freeze found by `run_id` (its setup, `wait=True`; its teardown, `wait=False`):
    a dead holder's freeze is released, recorded and alerted (`orphaned_freeze`) at once; for a
    live one the setup waits up to `operations.holder_wait_seconds`, judging it again every beat
    (and beating itself), then refuses to start (HolderAlive, recorded on the run). Returns the
    dead runs found and the holders still alive."""
    ops = settings.operations
    started = time.monotonic()
    found: list[Released] = []
    while True:
        live: list[Holder] = []
        with connect(dsn) as conn:
            dead = release_orphan_freezes(conn, settings, found_by=run_id, lookup=lookup, live=live, shop=shop)
            record_found(conn, settings, dead, found_by=run_id, found_by_dag=dag_id, task_id=task_id,
                         kind=delivery.ORPHANED_FREEZE)
            runs.beat(conn, run_id)
            conn.commit()
        for one in dead:
            log.warning("run %s: %s", run_id, one.note)
        found += dead
        waited = time.monotonic() - started
        if not live or not wait:
            return found, live
        if waited >= ops.holder_wait_seconds:
            holder = live[0]
            refused = HolderAlive(
                f"another stocksync run, {holder.run_id} of {holder.dag_id}, keeps checkout closed and is alive "
                f"({holder.why}); this run waited {waited:.0f} s (operations.holder_wait_seconds) and does not "
                "start: trigger it again once that run has ended")
            runs.record_failure(dsn, run_id, "freeze", refused, waited)
            raise refused
        log.info("run %s: waiting for %s (%s)", run_id, ", ".join(h.run_id for h in live), live[0].why)
        time.sleep(min(ops.heartbeat_interval_seconds, max(ops.holder_wait_seconds - waited, 0.1)))


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
