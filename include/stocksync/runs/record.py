"""The run record and the transactions of a run's steps: the one owner of both.

A sync run is a row in `stocksync.sync_runs`, keyed by the Airflow run id. It is the channel
between the tasks: the setup opens it with the run's spec (settings and options, resolved once
from the config and the run's parameters), and every later task and the teardown read that spec
back, so editing the config while a run is going changes nothing for it. Each step gets its
connection from `lifecycle.step()`, which commits what the step did or, on failure, decides what
survives (a failed validation keeps its recorded checks) and records the failure here, on a fresh
connection. Every statement that writes the run record is executed here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.config.settings import RunOptions, Settings
from include.stocksync.domain.errors import PermanentError, is_permanent
from include.stocksync.store.db import connect, execute_file, query

log = logging.getLogger(__name__)

# A run in one of these states is done: re-running any of its tasks changes nothing.
FINISHED = ("applied", "duplicate", "dry_run")
OUTCOMES = ("changed", "unchanged", "stale", "clamped", "duplicate", "unknown")


class RunIdTaken(PermanentError):
    """The Airflow run id is already the record of another DAG's stock sync run."""


@dataclass(frozen=True)
class RunSpec:
    """What a run was asked to do, as resolved when it opened."""

    settings: Settings
    options: RunOptions

    def as_json(self) -> tuple[str, str]:
        return self.settings.model_dump_json(), self.options.model_dump_json()


def open_run(dsn: str, *, run_id: str, dag_id: str, spec: RunSpec, report_path: str,
             triggered_by: str | None = None) -> str:
    """Create the run record with its spec (or keep the existing one on a re-run: a retried
    setup does not re-resolve the spec). Returns its status.

    Records are keyed by the Airflow run id, which Airflow only keeps unique per DAG: a run id
    already used by the other DAG (ops can pick run ids over REST) is refused, never merged."""
    settings_json, options_json = spec.as_json()
    with connect(dsn) as conn:
        row = execute_file(conn, "stocksync/insert_sync_run", {
            "run_id": run_id, "dag_id": dag_id, "freeze_mode": spec.settings.freeze_mode,
            "adjustment_mode": spec.settings.adjustment_mode, "watermark_source": spec.settings.watermark_source,
            "settings": settings_json, "options": options_json, "triggered_by": triggered_by,
            "override_reason": spec.options.override_reason, "report_path": report_path,
        }).fetchone()
        owner = None if row else run_owner(conn, run_id)
        conn.commit()
    if row is None:
        raise RunIdTaken(f"run id {run_id!r} is already used by a stock sync run of DAG {owner!r}; "
                         f"stocksync keys its records by run id, so trigger {dag_id} with another run id")
    return str(row[0])


def spec_of(run: Mapping[str, Any]) -> RunSpec:
    """The spec stored on a run record."""
    return RunSpec(Settings.model_validate(run["settings"]), RunOptions.model_validate(run.get("options") or {}))


def get_run(dsn: str, run_id: str) -> dict[str, Any]:
    with connect(dsn) as conn:
        return read_run(conn, run_id)


def read_run(conn: psycopg.Connection, run_id: str) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
    if row is None:
        raise LookupError(f"no sync run {run_id!r}")
    return row


def run_owner(conn: psycopg.Connection, run_id: str) -> str | None:
    """The DAG whose run record has this run id, if any."""
    row = conn.execute(query("stocksync/select_sync_run_owner"), {"run_id": run_id}).fetchone()
    return row[0] if row else None


def is_finished(run: Mapping[str, Any]) -> bool:
    return run["status"] in FINISHED


def record_stage(conn: psycopg.Connection, run_id: str, name: str, seconds: float) -> None:
    execute_file(conn, "stocksync/update_sync_run_stage", {"run_id": run_id, "stage": name, "seconds": seconds})


def record_failure(dsn: str, run_id: str, name: str, exc: BaseException, seconds: float,
                   retries: list[str] | None = None) -> None:
    """The failed attempt on the run record: its error, the first cause (kept), the attempt list."""
    error = f"{name}: {exc}"[:4000]
    attempt = {"stage": name, "error": error, "kind": "permanent" if is_permanent(exc) else "transient",
               "retries": (retries or [])[-20:]}
    try:
        with connect(dsn, connect_timeout=10) as conn:
            execute_file(conn, "stocksync/update_sync_run_failure",
                         {"run_id": run_id, "error": error, "attempt": json.dumps(attempt, default=str)})
            record_stage(conn, run_id, name, seconds)
            conn.commit()
    except psycopg.Error:
        log.exception("could not record the failure of %s for run %s (the step's error follows)", name, run_id)


# ----------------------------------------------------------------------------- what steps record

def record_extract(conn: psycopg.Connection, run_id: str, result: Any) -> None:
    execute_file(conn, "stocksync/update_sync_run_extract", {
        "run_id": run_id, "staging_table": result.staging_table, "snapshot_id": result.snapshot_id,
        "snapshot_taken_at": result.snapshot_taken_at, "orders_counted_until": result.orders_counted_until,
        "request_started_at": result.request_started_at, "pages": result.pages, "extracted": result.rows,
    })


def record_validation(conn: psycopg.Connection, run_id: str, success: bool, valid: int | None = None,
                      quarantined: int | None = None) -> None:
    execute_file(conn, "stocksync/update_sync_run_validation",
                 {"run_id": run_id, "dq_success": success, "valid": valid, "quarantined": quarantined})


def record_guardrails(conn: psycopg.Connection, run_id: str, guardrails: list[dict[str, Any]],
                      override_reason: str | None) -> None:
    execute_file(conn, "stocksync/update_sync_run_guardrails", {
        "run_id": run_id, "override_reason": override_reason, "guardrails": json.dumps(guardrails)})


def record_applied(conn: psycopg.Connection, run_id: str, status: str, counts: Mapping[str, int], valid: int,
                   watermark: Any, details: dict[str, Any] | None = None) -> None:
    """The apply's result, written inside the apply transaction (atomic with the stock update)."""
    execute_file(conn, "stocksync/update_sync_run_applied", {
        "run_id": run_id, "status": status, "valid": valid, "apply_details": json.dumps(details or {}),
        "watermark": watermark.at, "watermark_source": watermark.source,
        **{outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
    })


def applied_status(conn: psycopg.Connection, run_id: str) -> tuple[str, str | None] | None:
    """(status, snapshot id) of the run, read inside the apply transaction."""
    row = conn.execute(query("stocksync/select_sync_run_status"), {"run_id": run_id}).fetchone()
    return (row[0], row[1]) if row else None


# --- runs that end on purpose without applying (intraday sync) ---------------------------
ENDED_ON_PURPOSE = ("skipped", "gap", "stalled")


def record_outcome(conn: psycopg.Connection, run_id: str, status: str, reason: str,
                   watermark: Any = None) -> bool:
    """End a running run as `skipped`, `gap` or `stalled` with its reason (docs/order-push-and-intraday.md).
    False when the run was not running (a finished run keeps its result)."""
    if status not in ENDED_ON_PURPOSE:
        raise ValueError(f"record_outcome takes {ENDED_ON_PURPOSE}, not {status!r}")
    row = execute_file(conn, "stocksync/update_sync_run_outcome", {
        "run_id": run_id, "status": status, "reason": reason[:4000],
        "watermark": getattr(watermark, "at", None)}).fetchone()
    return row is not None
# --- end: runs that end on purpose without applying ----------------------------------------------


def finish_dry_run(conn: psycopg.Connection, run_id: str) -> None:
    execute_file(conn, "stocksync/update_sync_run_dry_run", {"run_id": run_id})


def close(conn: psycopg.Connection, run_id: str, freeze_seconds: float) -> str | None:
    """The teardown's close: freeze window, finished time, `failed` for a run that never got
    to apply. Returns the final status (None without a record)."""
    row = execute_file(conn, "stocksync/update_sync_run_finish",
                       {"run_id": run_id, "freeze_seconds": freeze_seconds}).fetchone()
    return row[0] if row else None


# --- liveness, time budget and warnings on the run record (lifecycle.py decides when) ----
def beat(conn: psycopg.Connection, run_id: str) -> None:
    """The run's heartbeat (a step's start, and its heartbeat thread while it runs)."""
    execute_file(conn, "stocksync/update_sync_run_heartbeat", {"run_id": run_id})


def set_budget(conn: psycopg.Connection, run_id: str, until: Any) -> None:
    """A full-mode run must be done by `until` (its freeze's expiry); a retried setup keeps the first."""
    execute_file(conn, "stocksync/update_sync_run_budget", {"run_id": run_id, "budget_until": until})


def add_warning(conn: psycopg.Connection, run_id: str, warning: Mapping[str, Any]) -> None:
    """Something the run survived that someone should know (a report not written, a dead run's freeze)."""
    execute_file(conn, "stocksync/update_sync_run_warning",
                 {"run_id": run_id, "warning": json.dumps(dict(warning), default=str)})


def declare_abandoned(conn: psycopg.Connection, run_id: str, *, note: str, freeze_seconds: float | None,
                      warning: Mapping[str, Any]) -> str | None:
    """Close a dead run: `abandoned` unless it had applied, the note as its error and warning.
    None when it was closed already (someone else declared it first)."""
    row = execute_file(conn, "stocksync/update_sync_run_abandoned", {
        "run_id": run_id, "note": note, "freeze_seconds": freeze_seconds,
        "warning": json.dumps(dict(warning), default=str)}).fetchone()
    return row[0] if row else None
# --- end: liveness, time budget and warnings on the run record -------------------------------------


def staging_dropped(conn: psycopg.Connection, run_id: str) -> None:
    execute_file(conn, "stocksync/update_sync_run_staging_dropped", {"run_id": run_id})


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run record as a printable summary."""
    keys = ("run_id", "status", "freeze_mode", "adjustment_mode", "snapshot_id", "extracted", "valid", "changed",
            "unchanged", "clamped", "stale", "duplicate", "unknown", "freeze_seconds", "stage_seconds",
            "report_path", "error", "first_error")
    return {k: run.get(k) for k in keys}


# --- a dropped file already applied ends its run as a duplicate (file_drop.py) -------------
def record_file_duplicate(conn: psycopg.Connection, run_id: str, *, snapshot_id: str | None,
                          snapshot_taken_at: Any, orders_counted_until: Any, request_started_at: Any,
                          details: Mapping[str, Any]) -> None:
    """The run took a file whose bytes or snapshot another run applied: it is `duplicate` at once
    (nothing staged or applied; the later steps see a finished run), `details` say which run."""
    execute_file(conn, "stocksync/update_sync_run_file_duplicate", {
        "run_id": run_id, "snapshot_id": snapshot_id, "snapshot_taken_at": snapshot_taken_at,
        "orders_counted_until": orders_counted_until, "request_started_at": request_started_at,
        "apply_details": json.dumps(dict(details), default=str)})
# --- end: a dropped file already applied ends its run as a duplicate ---------------------------------
