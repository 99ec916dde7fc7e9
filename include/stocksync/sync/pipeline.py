"""The steps of a sync run as plain functions (no Airflow).

Airflow tasks (`include/stocksync/airflow/dag_factory.py`) call these with the DSN of stocksync's own
database, a run id and the shop port (`shop`: include/stocksync/shop/port.py; none given: the
reference shop in stocksync's database, the single-database layout); tests and the benchmark call
them directly. The setup (`freeze_checkout`) resolves the run's spec
once and stores it on the run record; every later step reads it back from there (`runs.py`
owns the record and the steps' transactions). Every step is idempotent: a finished run's steps
change nothing when re-run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg
import requests
from psycopg import sql

from include.stocksync.config.operations import MIN_STEP_SECONDS, freeze_ttl
from include.stocksync.config.settings import RunOptions, Settings, process_settings
from include.stocksync.ops import dead_runs, delivery
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.runs.record import OUTCOMES, RunIdTaken, RunSpec, get_run
from include.stocksync.runs.reports import report_path
from include.stocksync.runs.uow import committed, transaction
from include.stocksync.shop import freeze
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect, execute_file, staging_identifier
from include.stocksync.store.migrations import upgrade
from include.stocksync.sync import ports
from include.stocksync.sync.apply import ApplyResult, apply_plan
from include.stocksync.sync.extract import ExtractResult, WmsClient, extract_to_staging
from include.stocksync.sync.guardrails import GuardrailFailed, check_plan
from include.stocksync.sync.merge import PlanSummary, Watermark, build_plan, choose_watermark, plan_table
from include.stocksync.sync.shop_mirror import drop_copies, mirror_catalog
from include.stocksync.sync.validate import ValidationFailed, ValidationResult, validate_counts
from include.stocksync.wms.sources.base import SnapshotLimits, WalkBounds, WmsContractError, WmsUnavailable

__all__ = ["RunIdTaken", "get_run", "open_run", "freeze_checkout", "extract", "validate", "merge", "load",
           "finish_dry_run", "load_stock", "release_freeze", "summary", "apply_schema"]

log = logging.getLogger(__name__)

FREEZE_REASON = "stocksync: loading warehouse stock"
# In `apply` freeze mode checkout closes only around the apply transaction, whose lock wait is
# bounded by lock_timeout_seconds: its freeze expires sooner than a full-mode one.
APPLY_FREEZE_TTL_SECONDS = 600


def apply_schema(dsn: str, stocksync_dsn: str | None = None) -> None:
    """Create the reference shop schema in `dsn` (demo and tests) and bring stocksync's own schema
    up to date through its migrations in `stocksync_dsn` (None: in `dsn` too, the single-database
    layout). Idempotent."""
    with transaction(dsn) as conn:
        execute_file(conn, "shop/create_schema")
    upgrade(stocksync_dsn or dsn)


def open_run(dsn: str, *, run_id: str, dag_id: str, settings: Settings, options: RunOptions | None = None,
             triggered_by: str | None = None) -> str:
    """Open the run record with its spec (see `runs.open_run`). Returns its status."""
    spec = RunSpec(settings, options or RunOptions())
    return runs.open_run(dsn, run_id=run_id, dag_id=dag_id, spec=spec, triggered_by=triggered_by,
                         report_path=str(report_path(settings, run_id)))


def _run(dsn: str, run_id: str) -> tuple[dict[str, Any], RunSpec]:
    run = get_run(dsn, run_id)
    return run, runs.spec_of(run)


def _shop(dsn: str, shop: ShopPort | None) -> ShopPort:
    """The shop port given, or the reference shop in stocksync's own database (`dsn`)."""
    return shop if shop is not None else open_shop(dsn)


def freeze_checkout(dsn: str, *, run_id: str, dag_id: str, settings: Settings,
                    triggered_by: str | None = None, options: RunOptions | None = None,
                    lookup: lifecycle.AirflowLookup | None = None,
                    shop: ShopPort | None = None) -> dict[str, Any]:
    """Setup: open the run record with the run's spec; in `full` mode close checkout until the
    teardown (never for a dry run). `lookup` is Airflow's view of other runs (passed in by the
    Airflow layer; None judges holders by their heartbeat alone)."""
    port = _shop(dsn, shop)
    status = open_run(dsn, run_id=run_id, dag_id=dag_id, settings=settings, options=options,
                      triggered_by=triggered_by)
    spec = runs.spec_of(get_run(dsn, run_id))  # a retried setup keeps the spec it opened with
    if status in runs.FINISHED:
        return {"frozen": False, "reason": f"run already {status}; nothing will be written"}
    orphans = release_orphans(dsn, run_id=run_id, dag_id=dag_id, settings=spec.settings,  # dead runs' freezes
                              wait=not spec.options.dry_run, lookup=lookup, shop=port)
    if spec.options.dry_run:
        return {"frozen": False, "reason": "dry run: nothing is written, checkout stays open", "orphans": orphans}
    if spec.settings.freeze_mode != "full":
        return {"frozen": False, "reason": f"freeze_mode={spec.settings.freeze_mode}", "orphans": orphans}
    with lifecycle.step(dsn, run_id, "freeze") as conn:
        if held_now := freeze.active_freezes(port, set_by=run_id):
            # a retried setup whose first try froze checkout and lost its record of the budget:
            # the freeze's expiry is the budget (set_budget keeps a budget recorded before)
            runs.set_budget(conn, run_id, min(f.expires_at for f in held_now))
            return {"frozen": True, "reason": "already frozen by this run", "orphans": orphans}
        # the TTL covers the tasks under the freeze (ops_settings.freeze_ttl) and is the
        # run's time budget: a run that cannot finish by the freeze's expiry fails and releases
        held = freeze.set_freeze(port, set_by=run_id, reason=FREEZE_REASON,
                                 message=spec.settings.freeze_shopper_message,
                                 ttl_seconds=freeze_ttl(spec.settings))
        runs.set_budget(conn, run_id, held.expires_at)
    return {"frozen": True, "freeze_id": held.freeze_id, "expires_at": held.expires_at.isoformat(), "orphans": orphans}


# --- orphaned freezes, the run budget, reports off the critical path, alerts after release ---
def release_orphans(dsn: str, *, run_id: str, dag_id: str, settings: Settings, wait: bool = False,
                    lookup: lifecycle.AirflowLookup | None = None,
                    shop: ShopPort | None = None) -> list[dict[str, Any]]:
    """Release the freezes of sync runs the evidence says are dead (lifecycle.py), in every run's
    setup (`wait`: a live holder is waited for, then refused) and teardown: recorded as warnings on
    this run and on the dead one (closed as `abandoned`), alerted after this run's freeze is
    released. A manual freeze is never touched."""
    found, live = dead_runs.settle_holders(dsn, settings, run_id=run_id, dag_id=dag_id, lookup=lookup, wait=wait,
                                           task_id="freeze_checkout" if wait else "release_freeze",
                                           shop=_shop(dsn, shop))
    silent = [holder for holder in live if holder.stopped_beating]
    if silent and not wait:  # the run ends while a silent run not yet proven dead keeps checkout closed
        with transaction(dsn) as conn:
            for holder in silent:
                runs.add_warning(conn, run_id, holder.as_warning(lifecycle.CHECKOUT_HELD))
    return [dead.as_warning(delivery.ORPHANED_FREEZE) for dead in found]


def _budgeted(conn: psycopg.Connection, run_id: str, seconds: float, reserve: float = 0.0) -> tuple[float, bool]:
    """`seconds` cut to what is left of a full-mode run's budget (less `reserve` for the steps
    after this one); True when it was cut."""
    left = lifecycle.budget_left(conn, run_id)
    if left is None or left - reserve >= seconds:
        return seconds, False
    return max(left - reserve, MIN_STEP_SECONDS), True


def _write_report_or_warn(dsn: str, conn: psycopg.Connection, settings: Settings, run_id: str, dag_id: str,
                          status: str) -> Any:
    """The run report, off the critical path: a folder that is unwritable or full is a warning on
    the run and one alert, never a failed sync."""
    try:
        return ports.reports().write_report(conn, settings, run_id)
    except Exception as exc:  # OSError mostly (ENOSPC, EACCES, ENOTDIR); the sync's result stands
        conn.rollback()
        problem = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception("run %s: its report could not be written (%s); the sync is %s", run_id, problem, status)
        subject = f"report:{run_id}"
        with committed(conn):
            if not delivery.already_alerted(conn, delivery.REPORT_FAILED, subject):
                runs.add_warning(conn, run_id, {"kind": delivery.REPORT_FAILED, "error": problem,
                                                "path": str(report_path(settings, run_id))})
                delivery.queue(conn, settings, delivery.payload(
                    kind=delivery.REPORT_FAILED, dag_id=dag_id, run_id=run_id, task_id="release_freeze", error=problem,
                    text=f"stocksync: the report of run {run_id} could not be written ({problem[:200]}); "
                         f"the sync itself is {status}"), queued_by=run_id, subject=subject)
        delivery.deliver(dsn, settings, run_id=run_id, budget_seconds=settings.operations.alert_delivery_budget_seconds)
        return None
# --- end: orphaned freezes, the run budget, reports off the critical path, alerts after release ------


def extract(dsn: str, *, run_id: str, session: requests.Session, base_url: str,
            shop: ShopPort | None = None) -> ExtractResult:
    run, spec = _run(dsn, run_id)
    if runs.is_finished(run):
        log.info("run %s is %s: keeping its extract (snapshot %s)", run_id, run["status"], run["snapshot_id"])
        return ExtractResult(run["staging_table"], run["snapshot_id"], run["snapshot_taken_at"],
                             run["orders_counted_until"], run["request_started_at"], run["pages"] or 0,
                             run["extracted"] or 0, 0.0)
    settings = spec.settings
    client = WmsClient(session, base_url, page_size=settings.page_size, timeout=settings.http_timeout_seconds,
                       attempts=settings.http_attempts, backoff=settings.http_backoff_seconds,
                       retry_after_max=settings.retry_after_max_seconds)
    with lifecycle.step(dsn, run_id, "extract", retries=client.failures) as conn:
        # the run's copy of the shop's catalog (shop_mirror.py): the walk is bounded by its size
        mirror = mirror_catalog(conn, _shop(dsn, shop), run_id)
        enabled = conn.execute(sql.SQL("SELECT count(*) FROM ({}) enabled").format(mirror.enabled_skus())).fetchone()
        # the walk's deadline leaves the budget's reserve to validate, merge and load
        seconds, cut = _budgeted(conn, run_id, settings.extract_deadline_seconds,
                                 settings.operations.budget_reserve_seconds)
        bounds = WalkBounds.for_catalog(int(enabled[0]) if enabled else 0, settings.page_size,
                                        margin=settings.walk_page_margin, extra=settings.walk_extra_pages,
                                        seconds=seconds, max_batch_bytes=settings.max_page_bytes)
        limits = SnapshotLimits(timedelta(seconds=settings.clock_skew_seconds),
                                timedelta(seconds=settings.max_snapshot_age_seconds),
                                settings.snapshot_page_times)
        try:
            result = extract_to_staging(conn, client, run_id, bounds=bounds, limits=limits)
        except WmsContractError as exc:
            if cut and "passed its deadline" in str(exc):
                raise lifecycle.BudgetExhausted(
                    f"{exc}; the walk had {seconds:.0f} s, what the run's time budget left it (full freeze mode: "
                    "config freeze_ttl_seconds, operations.budget_reserve_seconds)") from exc
            raise
        except WmsUnavailable as exc:
            # the last attempt's timeout was cut to the walk's deadline and ran out with it:
            # a WMS that slow breaks the deadline (permanent, like any bound), not a blip to retry
            if bounds.remaining() > 1.0:
                raise
            if cut:
                raise lifecycle.BudgetExhausted(
                    f"{exc}; the walk used all {seconds:.0f} s the run's time budget left it (full freeze mode: "
                    "config freeze_ttl_seconds, operations.budget_reserve_seconds)") from exc
            raise WmsContractError(f"the WMS walk passed its deadline of {seconds:.0f} s: {exc} "
                                   "(config extract_deadline_seconds)") from exc
        runs.record_extract(conn, run_id, result)
    return result


def validate(dsn: str, *, run_id: str, shop: ShopPort | None = None) -> ValidationResult:
    run, spec = _run(dsn, run_id)
    if runs.is_finished(run):
        log.info("run %s is %s: keeping its validation", run_id, run["status"])
        return ValidationResult(True, run["extracted"] or 0, run["valid"] or 0, run["quarantined"] or 0, [], 0.0)
    with lifecycle.step(dsn, run_id, "validate", keep_on_failure=(ValidationFailed,)) as conn:
        try:
            result = validate_counts(conn, run_id, run["staging_table"], spec.settings, shop=_shop(dsn, shop))
        except ValidationFailed:
            runs.record_validation(conn, run_id, False)  # kept with the checks: the step commits them
            raise
        runs.record_validation(conn, run_id, True, result.valid, result.quarantined)
    return result


def run_watermark(run: dict[str, Any], settings: Settings) -> Watermark:
    request_started_at: datetime = run["request_started_at"]
    return choose_watermark(settings, run["orders_counted_until"], request_started_at)


def merge(dsn: str, *, run_id: str, shop: ShopPort | None = None) -> PlanSummary:
    """Build the plan, judge it with the guardrails (before any write), and for a dry run
    write the plan report."""
    run, spec = _run(dsn, run_id)
    settings, options = spec.settings, spec.options
    if runs.is_finished(run):
        log.info("run %s is %s: keeping its plan", run_id, run["status"])
        return PlanSummary(plan_table(run_id), run["valid"] or 0, {}, 0, 0.0)
    with lifecycle.step(dsn, run_id, "merge", keep_on_failure=(GuardrailFailed,)) as conn:
        plan = build_plan(conn, run_id, run["staging_table"], settings, run_watermark(run, settings), options.skus,
                          shop=_shop(dsn, shop))
        # a dry run is the preview ops ask for before overriding: it writes its plan even when a
        # guardrail trips, and says there that a real run would stop
        guardrails = check_plan(conn, run_id, plan.plan_table, settings, subset=bool(options.skus),
                                override_reason=options.override_reason)
        runs.record_guardrails(conn, run_id, [g.as_dict() for g in guardrails], options.override_reason)
        stopping = [] if options.override_reason else [g for g in guardrails if not g.success]
        if options.dry_run:
            ports.reports().write_plan_report(conn, settings, run_id, plan.plan_table, stopping)
            if stopping:
                log.warning("dry run %s: a real run would stop here: %s", run_id,
                            "; ".join(f"{g.name}: {g.observed}" for g in stopping))
        elif stopping:
            raise GuardrailFailed(stopping)
        return plan


def finish_dry_run(dsn: str, *, run_id: str) -> dict[str, Any]:
    """A dry run's last step: record it as such; shop stock and the freeze were never touched."""
    _, spec = _run(dsn, run_id)
    with lifecycle.step(dsn, run_id, "dry_run") as conn:
        runs.finish_dry_run(conn, run_id)
    directory = report_path(spec.settings, run_id).parent
    return {"dry_run": True, "plan_csv": str(directory / "plan.csv"), "plan_html": str(directory / "plan.html")}


def load(dsn: str, *, run_id: str, plan_table: str, shop: ShopPort | None = None) -> ApplyResult:
    """Apply the plan; in `apply` freeze mode, checkout is closed only around the locked part."""
    run, spec = _run(dsn, run_id)
    settings = spec.settings
    if runs.is_finished(run):
        log.info("run %s is %s: nothing to apply", run_id, run["status"])
        counts = {k: run[k] for k in OUTCOMES if run.get(k)}
        return ApplyResult("already_applied", counts)
    watermark = run_watermark(run, settings)
    port = _shop(dsn, shop)
    frozen = False

    def close_checkout() -> None:
        """Committed by the shop at once, so shoppers see it before the stock lock is taken."""
        nonlocal frozen
        frozen = True
        freeze.set_freeze(port, set_by=run_id, reason=FREEZE_REASON, message=settings.freeze_shopper_message,
                          ttl_seconds=min(settings.freeze_ttl_seconds, APPLY_FREEZE_TTL_SECONDS))

    try:
        # a full-catalog sync records the drift it corrects (a SKU-list push says nothing of the rest)
        from include.stocksync.sync import drift

        record_drift = None if spec.options.skus else drift.recorder(run_id=run_id, dag_id=run["dag_id"],
                                                                     settings=settings)
        with lifecycle.step(dsn, run_id, "load") as conn:
            # the apply's lock wait ends within the run's budget
            lock_wait, cut = _budgeted(conn, run_id, settings.lock_timeout_seconds, 1.0)
            apply_settings = settings.model_copy(update={"lock_timeout_seconds": lock_wait}) if cut else settings
            return apply_plan(conn, run_id=run_id, snapshot_id=run["snapshot_id"], plan_table=plan_table,
                              settings=apply_settings, watermark=watermark,
                              before_lock=close_checkout if settings.freeze_mode == "apply" else None,
                              before_write=record_drift, shop=port)
    finally:
        if frozen:
            freeze.release_freezes(port, set_by=run_id)


def load_stock(dsn: str, *, run_id: str, plan_table: str, shop: ShopPort | None = None) -> dict[str, Any]:
    """The load task: apply the plan, or for a dry run record it as such (nothing written)."""
    _, spec = _run(dsn, run_id)
    if spec.options.dry_run:
        return finish_dry_run(dsn, run_id=run_id)
    return load(dsn, run_id=run_id, plan_table=plan_table, shop=shop).as_dict()


def release_freeze(dsn: str, *, run_id: str, dag_id: str,
                   lookup: lifecycle.AirflowLookup | None = None, shop: ShopPort | None = None) -> dict[str, Any]:
    """Teardown: release this run's freezes (never anybody else's), close the run record,
    write the run report, drop staging tables past their retention. Safe to call any number
    of times. Touches nothing when the run id belongs to another DAG's run (see `open_run`).
    `lookup` as for `freeze_checkout`."""
    port = _shop(dsn, shop)
    try:
        with transaction(dsn) as conn:
            owner = runs.run_owner(conn, run_id)
            if owner is not None and owner != dag_id:
                log.warning("run id %s belongs to DAG %s: leaving its freeze and record alone", run_id, owner)
                return {"released": 0, "freeze_seconds": 0.0, "status": None, "report": None, "staging_dropped": 0,
                        "skipped": f"run id belongs to DAG {owner}"}
            released = freeze.release_freezes(port, set_by=run_id)  # checkout opens before anything else is done
            spec_settings = runs.spec_of(runs.read_run(conn, run_id)).settings if owner is not None else None
    except psycopg.OperationalError:
        # stocksync's own database cannot be reached (or dropped us) and the owner is unknown:
        # checkout does not wait for it. This run's freezes are released in the shop, then the error
        # stands (transient: the teardown's retry closes the record, writes the report, alerts)
        log.error("run %s: stocksync's database failed in the teardown; releasing this run's freezes in the "
                  "shop first", run_id)
        freeze.release_freezes(port, set_by=run_id)
        raise
    if spec_settings is not None:  # another run's freeze still closing checkout: released if dead, else said
        release_orphans(dsn, run_id=run_id, dag_id=dag_id, settings=spec_settings, lookup=lookup, shop=port)
    with connect(dsn) as conn:
        with committed(conn):
            window = freeze.freeze_seconds(port, set_by=run_id)
            status = runs.close(conn, run_id, window)
        with committed(conn):
            # a run refused before it opened its record has no spec: the deployment's settings say
            # where reports and staging live
            settings = runs.spec_of(runs.read_run(conn, run_id)).settings if status else process_settings()
        # alerts go out now that checkout is open (bounded); then the report, which lists them
        delivery.deliver(dsn, settings, run_id=run_id, budget_seconds=settings.operations.alert_delivery_budget_seconds,
                         shop=port)
        path = _write_report_or_warn(dsn, conn, settings, run_id, dag_id, status) if status else None
        with committed(conn):  # a view on the shop's tables lasts no longer than its run
            drop_copies(conn, run_id, views_only=True)
        dropped = drop_expired_staging(conn, settings.staging_retention_days)
    return {"released": released, "freeze_seconds": round(window, 3), "status": status,
            "report": str(path) if path else None, "staging_dropped": dropped}


def drop_expired_staging(conn: psycopg.Connection, retention_days: int) -> int:
    """Drop the raw and plan tables and the shop copies of runs finished more than `retention_days` ago."""
    expired = execute_file(conn, "stocksync/select_expired_staging", {"retention_days": retention_days}).fetchall()
    for run_id, raw in expired:
        with committed(conn):
            for table in (raw, plan_table(run_id)):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging_identifier(table)))
            drop_copies(conn, run_id)
            runs.staging_dropped(conn, run_id)
    return len(expired)


def summary(dsn: str, run_id: str) -> dict[str, Any]:
    """The run record as a printable summary."""
    return runs.summary(get_run(dsn, run_id))
