"""The six steps of a sync run as plain functions (no Airflow).

Airflow tasks (`include/stocksync/dag_factory.py`) call these with a DSN, a run id and
the run's settings; tests and the benchmark call them directly. Each step records its
duration on the run record and, when it fails, the error; every step is idempotent.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import psycopg
import requests
from psycopg import sql
from psycopg.rows import dict_row

from include.stocksync import freeze
from include.stocksync.apply import OUTCOMES, ApplyResult, apply_plan
from include.stocksync.db import connect, execute_file, query, staging_identifier
from include.stocksync.errors import PermanentError, is_permanent
from include.stocksync.extract import ExtractResult, WmsClient, extract_to_staging
from include.stocksync.guardrails import check_plan
from include.stocksync.merge import PlanSummary, Watermark, build_plan, choose_watermark, plan_table
from include.stocksync.report import report_path, write_plan_report, write_report
from include.stocksync.settings import RunOptions, Settings
from include.stocksync.sources.base import SnapshotLimits, WalkBounds
from include.stocksync.validate import ValidationResult, validate_counts

log = logging.getLogger(__name__)


class RunIdTaken(PermanentError):
    """The Airflow run id is already the record of another DAG's stock sync run."""


FREEZE_REASON = "stocksync: loading warehouse stock"
# In `apply` freeze mode checkout closes only around the apply transaction, whose lock wait is
# bounded by lock_timeout_seconds: its freeze expires sooner than a full-mode one.
APPLY_FREEZE_TTL_SECONDS = 600
# A run in one of these states is done: re-running any of its tasks changes nothing.
FINISHED = ("applied", "duplicate", "dry_run")


def apply_schema(dsn: str) -> None:
    """Create (or bring up to date) the reference shop schema and stocksync's tables. Idempotent."""
    with connect(dsn, autocommit=True) as conn:
        execute_file(conn, "shop/create_schema")
        execute_file(conn, "stocksync/create_schema")


@contextmanager
def stage(dsn: str, run_id: str, name: str, retries: list[str] | None = None) -> Iterator[psycopg.Connection]:
    """A connection for one step; records its duration, and its error on failure.

    A failure is recorded on a fresh connection (the step's own may be what died), keeping the
    run's first cause and appending this attempt (with `retries`: the step's own failed tries)."""
    started = time.perf_counter()
    with connect(dsn) as conn:
        execute_file(conn, "stocksync/update_sync_run_reopen", {"run_id": run_id})
        conn.commit()
        try:
            yield conn
        except BaseException as exc:
            try:
                conn.rollback()
            except psycopg.Error:
                pass  # the connection is gone; the failure is recorded on a new one below
            record_failure(dsn, run_id, name, exc, time.perf_counter() - started, retries)
            raise
        execute_file(conn, "stocksync/update_sync_run_stage",
                     {"run_id": run_id, "stage": name, "seconds": time.perf_counter() - started})
        conn.commit()


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
            execute_file(conn, "stocksync/update_sync_run_stage",
                         {"run_id": run_id, "stage": name, "seconds": seconds})
            conn.commit()
    except psycopg.Error:
        log.exception("could not record the failure of %s for run %s (the step's error follows)", name, run_id)


def get_run(dsn: str, run_id: str) -> dict[str, Any]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
    if row is None:
        raise LookupError(f"no sync run {run_id!r}")
    return row


def open_run(dsn: str, *, run_id: str, dag_id: str, settings: Settings, triggered_by: str | None = None,
             override_reason: str | None = None) -> str:
    """Create the run record (or keep the existing one on a re-run). Returns its status.

    Records are keyed by the Airflow run id, which Airflow only keeps unique per DAG: a run id
    already used by the other DAG (ops can pick run ids over REST) is refused, never merged."""
    settings_json = json.dumps(asdict(settings), default=str)
    with connect(dsn) as conn:
        row = execute_file(conn, "stocksync/insert_sync_run", {
            "run_id": run_id, "dag_id": dag_id, "freeze_mode": settings.freeze_mode,
            "adjustment_mode": settings.adjustment_mode, "watermark_source": settings.watermark_source,
            "settings": settings_json, "triggered_by": triggered_by, "override_reason": override_reason,
            "report_path": str(report_path(settings, run_id)),
        }).fetchone()
        owner = None if row else run_owner(conn, run_id)
        conn.commit()
    if row is None:
        raise RunIdTaken(f"run id {run_id!r} is already used by a stock sync run of DAG {owner!r}; "
                         f"stocksync keys its records by run id, so trigger {dag_id} with another run id")
    return str(row[0])


def run_owner(conn: psycopg.Connection, run_id: str) -> str | None:
    """The DAG whose run record has this run id, if any."""
    row = conn.execute(query("stocksync/select_sync_run_owner"), {"run_id": run_id}).fetchone()
    return row[0] if row else None


def freeze_checkout(dsn: str, *, run_id: str, dag_id: str, settings: Settings,
                    triggered_by: str | None = None, options: RunOptions | None = None) -> dict[str, Any]:
    """Setup: open the run record; in `full` mode close checkout until the teardown
    (never for a dry run)."""
    options = options or RunOptions()
    status = open_run(dsn, run_id=run_id, dag_id=dag_id, settings=settings, triggered_by=triggered_by,
                      override_reason=options.override_reason)
    if status in FINISHED:
        return {"frozen": False, "reason": f"run already {status}; nothing will be written"}
    if options.dry_run:
        return {"frozen": False, "reason": "dry run: nothing is written, checkout stays open"}
    if settings.freeze_mode != "full":
        return {"frozen": False, "reason": f"freeze_mode={settings.freeze_mode}"}
    with stage(dsn, run_id, "freeze") as conn:
        if freeze.active_freezes(conn, set_by=run_id):
            return {"frozen": True, "reason": "already frozen by this run"}
        held = freeze.set_freeze(conn, set_by=run_id, reason=FREEZE_REASON, message=settings.freeze_shopper_message,
                                 ttl_seconds=settings.freeze_ttl_seconds)
    return {"frozen": True, "freeze_id": held.freeze_id, "expires_at": held.expires_at.isoformat()}


def extract(dsn: str, *, run_id: str, settings: Settings, session: requests.Session,
            base_url: str) -> ExtractResult:
    run = get_run(dsn, run_id)
    if run["status"] in FINISHED:
        log.info("run %s is %s: keeping its extract (snapshot %s)", run_id, run["status"], run["snapshot_id"])
        return ExtractResult(run["staging_table"], run["snapshot_id"], run["snapshot_taken_at"],
                             run["orders_counted_until"], run["request_started_at"], run["pages"] or 0,
                             run["extracted"] or 0, 0.0)
    client = WmsClient(session, base_url, page_size=settings.page_size, timeout=settings.http_timeout_seconds,
                       attempts=settings.http_attempts, backoff=settings.http_backoff_seconds,
                       retry_after_max=settings.retry_after_max_seconds)
    with stage(dsn, run_id, "extract", retries=client.failures) as conn:
        enabled = conn.execute(sql.SQL("SELECT count(*) FROM ({}) enabled").format(
            query("shop/select_enabled_skus"))).fetchone()
        bounds = WalkBounds.for_catalog(int(enabled[0]) if enabled else 0, settings.page_size,
                                        margin=settings.walk_page_margin, extra=settings.walk_extra_pages,
                                        seconds=settings.extract_deadline_seconds,
                                        max_batch_bytes=settings.max_page_bytes)
        limits = SnapshotLimits(timedelta(seconds=settings.clock_skew_seconds),
                                timedelta(seconds=settings.max_snapshot_age_seconds))
        result = extract_to_staging(conn, client, run_id, bounds=bounds, limits=limits)
        execute_file(conn, "stocksync/update_sync_run_extract", {
            "run_id": run_id, "staging_table": result.staging_table, "snapshot_id": result.snapshot_id,
            "snapshot_taken_at": result.snapshot_taken_at, "orders_counted_until": result.orders_counted_until,
            "request_started_at": result.request_started_at, "pages": result.pages, "extracted": result.rows,
        })
    return result


def validate(dsn: str, *, run_id: str, settings: Settings) -> ValidationResult:
    run = get_run(dsn, run_id)
    if run["status"] in FINISHED:
        log.info("run %s is %s: keeping its validation", run_id, run["status"])
        return ValidationResult(True, run["extracted"] or 0, run["valid"] or 0, run["quarantined"] or 0, [], 0.0)
    with stage(dsn, run_id, "validate") as conn:
        try:
            result = validate_counts(conn, run_id, run["staging_table"], settings)
        except Exception:
            conn.rollback()
            execute_file(conn, "stocksync/update_sync_run_validation",
                         {"run_id": run_id, "dq_success": False, "valid": None, "quarantined": None})
            conn.commit()
            raise
        execute_file(conn, "stocksync/update_sync_run_validation",
                     {"run_id": run_id, "dq_success": True, "valid": result.valid,
                      "quarantined": result.quarantined})
    return result


def run_watermark(run: dict[str, Any], settings: Settings) -> Watermark:
    request_started_at: datetime = run["request_started_at"]
    return choose_watermark(settings, run["orders_counted_until"], request_started_at)


def merge(dsn: str, *, run_id: str, settings: Settings, options: RunOptions | None = None) -> PlanSummary:
    """Build the plan, judge it with the guardrails (before any write), and for a dry run
    write the plan report."""
    options = options or RunOptions()
    run = get_run(dsn, run_id)
    if run["status"] in FINISHED:
        log.info("run %s is %s: keeping its plan", run_id, run["status"])
        return PlanSummary(plan_table(run_id), run["valid"] or 0, {}, 0, 0.0)
    with stage(dsn, run_id, "merge") as conn:
        plan = build_plan(conn, run_id, run["staging_table"], settings, run_watermark(run, settings), options.skus)
        # a dry run is the preview ops ask for before overriding: it writes its plan even when a
        # guardrail trips, and says there that a real run would stop
        guardrails = check_plan(conn, run_id, plan.plan_table, settings, subset=bool(options.skus),
                                override_reason=options.override_reason, raise_on_failure=not options.dry_run)
        if options.dry_run:
            stopping = [] if options.override_reason else [g for g in guardrails if not g.success]
            write_plan_report(conn, settings, run_id, plan.plan_table, stopping)
            if stopping:
                log.warning("dry run %s: a real run would stop here: %s", run_id,
                            "; ".join(f"{g.name}: {g.observed}" for g in stopping))
        return plan


def finish_dry_run(dsn: str, *, run_id: str, settings: Settings) -> dict[str, Any]:
    """A dry run's last step: record it as such; shop stock and the freeze were never touched."""
    with connect(dsn) as conn:
        execute_file(conn, "stocksync/update_sync_run_dry_run", {"run_id": run_id})
        conn.commit()
    directory = report_path(settings, run_id).parent
    return {"dry_run": True, "plan_csv": str(directory / "plan.csv"), "plan_html": str(directory / "plan.html")}


def load(dsn: str, *, run_id: str, settings: Settings, plan_table: str) -> ApplyResult:
    """Apply the plan; in `apply` freeze mode, checkout is closed only around the locked part."""
    run = get_run(dsn, run_id)
    if run["status"] in FINISHED:
        log.info("run %s is %s: nothing to apply", run_id, run["status"])
        counts = {k: run[k] for k in OUTCOMES if run.get(k)}
        return ApplyResult("already_applied", counts)
    watermark = run_watermark(run, settings)
    freeze_conn: psycopg.Connection | None = None

    def close_checkout() -> None:
        nonlocal freeze_conn
        freeze_conn = connect(dsn)
        freeze.set_freeze(freeze_conn, set_by=run_id, reason=FREEZE_REASON, message=settings.freeze_shopper_message,
                          ttl_seconds=min(settings.freeze_ttl_seconds, APPLY_FREEZE_TTL_SECONDS))

    try:
        with stage(dsn, run_id, "load") as conn:
            return apply_plan(conn, run_id=run_id, snapshot_id=run["snapshot_id"], plan_table=plan_table,
                              settings=settings, watermark=watermark,
                              before_lock=close_checkout if settings.freeze_mode == "apply" else None)
    finally:
        if freeze_conn is not None:
            freeze.release_freezes(freeze_conn, set_by=run_id)
            freeze_conn.close()


def release_freeze(dsn: str, *, run_id: str, dag_id: str, settings: Settings) -> dict[str, Any]:
    """Teardown: release this run's freezes (never anybody else's), close the run record,
    write the run report, drop staging tables past their retention. Safe to call any number
    of times. Touches nothing when the run id belongs to another DAG's run (see `open_run`)."""
    with connect(dsn) as conn:
        owner = run_owner(conn, run_id)
        if owner is not None and owner != dag_id:
            log.warning("run id %s belongs to DAG %s: leaving its freeze and record alone", run_id, owner)
            return {"released": 0, "freeze_seconds": 0.0, "status": None, "report": None, "staging_dropped": 0,
                    "skipped": f"run id belongs to DAG {owner}"}
        released = freeze.release_freezes(conn, set_by=run_id)
        window = freeze.freeze_seconds(conn, set_by=run_id)
        row = execute_file(conn, "stocksync/update_sync_run_finish",
                           {"run_id": run_id, "freeze_seconds": window}).fetchone()
        conn.commit()
        path = write_report(conn, settings, run_id) if row else None
        dropped = drop_expired_staging(conn, settings.staging_retention_days)
    return {"released": released, "freeze_seconds": round(window, 3), "status": row[0] if row else None,
            "report": str(path) if path else None, "staging_dropped": dropped}


def drop_expired_staging(conn: psycopg.Connection, retention_days: int) -> int:
    """Drop the raw and plan tables of runs finished more than `retention_days` ago."""
    expired = execute_file(conn, "stocksync/select_expired_staging", {"retention_days": retention_days}).fetchall()
    for run_id, raw in expired:
        for table in (raw, plan_table(run_id)):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging_identifier(table)))
        execute_file(conn, "stocksync/update_sync_run_staging_dropped", {"run_id": run_id})
        conn.commit()
    return len(expired)


def summary(dsn: str, run_id: str) -> dict[str, Any]:
    """The run record as a printable summary."""
    run = get_run(dsn, run_id)
    keys = ("run_id", "status", "freeze_mode", "adjustment_mode", "snapshot_id", "extracted", "valid", "changed",
            "unchanged", "clamped", "stale", "duplicate", "unknown", "freeze_seconds", "stage_seconds",
            "report_path", "error")
    return {k: run.get(k) for k in keys}
