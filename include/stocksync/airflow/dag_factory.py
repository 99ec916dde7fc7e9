"""The sync DAGs, built here once and used by every stocksync DAG file (nightly and ops push).

Tasks are thin: they resolve the run's settings, options and connections, call the plain
functions in `include/stocksync/sync/pipeline.py`, and pass references (table names, counts,
paths) through XCom, never rows. The freeze is a setup task and its release a teardown, so
the release runs whatever fails. The load task runs in the `stocksync_shop_writer` pool
(one slot), so the nightly sync and an ops push never write at the same time.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, dag, setup, task, teardown
from airflow.sdk.exceptions import AirflowFailException

from include.stocksync.airflow.file_tasks import wire_file_source
from include.stocksync.airflow.task_support import (
    START_DATE,
    _fail_fast,
    _note_lost_tries,
    _shop,
    _stocksync_dsn,
    airflow_view,
    bound_tasks,
    default_args,
    form_param,
    shop_timetable,
)
from include.stocksync.config.settings import (
    ADJUSTMENT_MODES,
    FREEZE_MODES,
    MAX_PUSH_SKUS,
    MAX_REASON_LENGTH,
    WATERMARK_SOURCES,
    WRITER_POOL,
    RunOptions,
    Settings,
    process_settings,
    run_options,
)
from include.stocksync.domain.contract import SKU_MAX_LENGTH
from include.stocksync.runs.reports import report_file, report_url


def run_params(settings: Settings, *, ops: bool) -> dict[str, Param]:
    """Typed parameters shown in the trigger form; defaults come from the config.

    The ops push (`ops=True`) adds dry run, SKU subset and guardrail override, and starts
    as a dry run so nothing is written by accident."""
    params = {
        "freeze_mode": form_param(settings.freeze_mode, type="string", enum=list(FREEZE_MODES), title="Freeze mode",
                             description="full: checkout closed for the whole run; apply: only around the apply "
                                         "transaction; none: never (the apply still keeps numbers right)."),
        "adjustment_mode": form_param(settings.adjustment_mode, type="string", enum=list(ADJUSTMENT_MODES),
                                 title="Adjustment mode",
                                 description="What to subtract from the WMS figure: nothing, unsent orders, or "
                                             "unsent orders and active carts."),
        "watermark_source": form_param(settings.watermark_source, type="string", enum=list(WATERMARK_SOURCES),
                                  title="Watermark source",
                                  description="wms: the WMS's orders_counted_until; request_time: orders placed "
                                              "after the snapshot request started count as unsent."),
    }
    if ops:
        params = {
            "dry_run": form_param(True, type="boolean", title="Dry run",
                             description="Compute the full plan and write the plan report (CSV and HTML) without "
                                         "touching shop stock or the checkout freeze. Untick to write."),
            "skus": form_param([], type="array", items={"type": "string", "minLength": 1, "maxLength": SKU_MAX_LENGTH},
                          maxItems=MAX_PUSH_SKUS, title="SKUs",
                          description="Push only these SKUs (one per line). Empty: the whole catalog."),
            **params,
            "override_guardrails": form_param(False, type="boolean", title="Override guardrails",
                                         description="Let this run through even if the plan trips a guardrail "
                                                     "(too many changes, too many zeros, low coverage)."),
            "override_reason": form_param(None, type=["null", "string"], maxLength=MAX_REASON_LENGTH,
                                     title="Override reason",
                                     description="Required when overriding: why this feed is right. Recorded "
                                                 "on the run and in its report."),
        }
    return params


def _resolve(params: dict[str, Any], dag_run: Any, ops: bool) -> tuple[Settings, RunOptions]:
    """The run's spec, resolved once (by the setup task): the config, then the form's params,
    then the REST conf. Later tasks read it back from the run record."""
    conf = getattr(dag_run, "conf", None) or {}
    merged = {**dict(params or {}), **conf}
    with _fail_fast():
        return process_settings().for_run(merged), run_options(merged, ops=ops)


def build_sync_dag(*, dag_id: str, schedule: str | None, doc_md: str | None, tags: list[str],
                   ops: bool = False) -> DAG:
    """Build a sync DAG: freeze → extract → validate → merge → load → release."""
    settings = process_settings()

    from include.stocksync.airflow.deadline import nightly_deadline

    timetable = shop_timetable(schedule, settings.shop_timezone) if schedule else None

    @dag(dag_id=dag_id, schedule=timetable, start_date=START_DATE, catchup=False, max_active_runs=1,
         tags=tags, doc_md=doc_md, default_args=default_args(settings), params=run_params(settings, ops=ops),
         user_defined_macros={"stocksync_report": report_file, "stocksync_report_url": report_url},
         deadline=nightly_deadline(settings) if schedule else None)  # scheduled DAG only
    def sync_dag() -> None:
        @setup
        def freeze_checkout(params: dict[str, Any] | None = None, dag_run: Any = None, run_id: str | None = None,
                            dag: Any = None) -> dict[str, Any]:
            """Check the run's parameters, open the run record with the run's spec and, in `full`
            freeze mode (and not for a dry run), close checkout (the site stays browsable)."""
            from include.stocksync.sync import pipeline

            run_settings, options = _resolve(params or {}, dag_run, ops)
            with _fail_fast():
                return pipeline.freeze_checkout(_stocksync_dsn(), run_id=str(run_id), dag_id=dag.dag_id,
                                                settings=run_settings, options=options, shop=_shop(),
                                                triggered_by=getattr(dag_run, "triggering_user_name", None),
                                                lookup=airflow_view)

        @task
        def extract_wms_counts(run_id: str | None = None, dag: Any = None, ti: Any = None) -> dict[str, Any]:
            """Walk every page of one WMS snapshot into an UNLOGGED staging table (COPY), with
            per-page retries and exponential backoff. Returns the table name and counts."""
            from airflow.providers.http.hooks.http import HttpHook
            from airflow.sdk import BaseHook

            from include.stocksync.sync import pipeline

            _note_lost_tries(run_id, dag, ti, "extract")
            wms_conn_id = process_settings().wms_conn_id
            wms_conn = BaseHook.get_connection(wms_conn_id)
            if not wms_conn.password:
                raise AirflowFailException(f"Connection {wms_conn_id!r} has no password: "
                                           "put the WMS bearer token there")
            hook = HttpHook(method="GET", http_conn_id=wms_conn_id)
            session = hook.get_conn(headers={"Authorization": f"Bearer {wms_conn.password}"})
            with _fail_fast():
                result = pipeline.extract(_stocksync_dsn(), run_id=str(run_id), session=session, base_url=hook.base_url,
                                          shop=_shop())
            return result.as_dict()

        @task
        def validate_counts(extracted: dict[str, Any], run_id: str | None = None, dag: Any = None,
                            ti: Any = None) -> dict[str, Any]:
            """Run the Great Expectations suite on the staged counts. A failed check with the `fail`
            policy stops the run (nothing written); `quarantine` checks keep offending rows out."""
            from include.stocksync.sync import pipeline

            _note_lost_tries(run_id, dag, ti, "validate")
            with _fail_fast():
                result = pipeline.validate(_stocksync_dsn(), run_id=str(run_id), shop=_shop())
            return {"rows": result.rows, "valid": result.valid, "quarantined": result.quarantined,
                    "staging_table": extracted["staging_table"]}

        @task
        def merge_in_window_orders(validated: dict[str, Any], run_id: str | None = None, dag: Any = None,
                                   ti: Any = None) -> dict[str, Any]:
            """Plan each SKU: `max(0, available - unsent orders - active carts)` against the
            current shop stock, then judge the plan with the guardrails (before any write)."""
            from include.stocksync.sync import pipeline

            _note_lost_tries(run_id, dag, ti, "merge")
            with _fail_fast():
                plan = pipeline.merge(_stocksync_dsn(), run_id=str(run_id), shop=_shop())
            return plan.as_dict()

        @task(pool=WRITER_POOL)
        def load_stock(plan: dict[str, Any], run_id: str | None = None, dag: Any = None,
                       ti: Any = None) -> dict[str, Any]:
            """Apply the plan in one transaction: lock, recompute the adjustment, one set-based
            UPDATE guarded by `seq`, audit rows, run record. Idempotent per run. A dry run writes
            nothing and returns where its plan report is."""
            from include.stocksync.sync import pipeline

            _note_lost_tries(run_id, dag, ti, "load")
            with _fail_fast():
                return pipeline.load_stock(_stocksync_dsn(), run_id=str(run_id), plan_table=plan["plan_table"],
                                           shop=_shop())

        @teardown
        def release_freeze(frozen: dict[str, Any], run_id: str | None = None, dag: Any = None) -> dict[str, Any]:
            """Release the freezes this run set (never a manual one), store the freeze window,
            close the run record and write the run report. Runs whatever failed."""
            from include.stocksync.sync import pipeline

            return pipeline.release_freeze(_stocksync_dsn(), run_id=str(run_id), dag_id=dag.dag_id,
                                           lookup=airflow_view, shop=_shop())

        # --- the drift the load corrected, and its alert when far above the trend ---------
        @task
        def judge_drift(loaded: dict[str, Any], run_id: str | None = None, dag: Any = None,
                        ti: Any = None) -> dict[str, Any] | None:
            """The drift this run's apply corrected (SKUs off, units over- and under-stated, recorded in
            its transaction); a night far above the trend of the nights before alerts (config loop.drift_*)."""
            from include.stocksync.ops.notices import post_alert
            from include.stocksync.sync import drift

            row = drift.recorded(_stocksync_dsn(), str(run_id))
            payload = drift.alert_payload(row) if row else None
            if payload is not None:
                run_settings = process_settings()
                post_alert(_stocksync_dsn(), payload, conn_id=run_settings.alerts_conn_id,
                           endpoint=run_settings.alerts_endpoint, run_id=str(run_id), dag_id=dag.dag_id,
                           task_id="judge_drift", try_number=getattr(ti, "try_number", None), settings=run_settings)
            return {k: (str(v) if k == "night" else v) for k, v in row.items()} if row else None
        # --- end: the drift the load corrected, and its alert when far above the trend ---------------

        # --- a file-drop WMS source waits (deferred) for the file before the setup freezes --
        if settings.wms_source == "file":
            judge_drift(wire_file_source(settings, freeze_checkout, release_freeze, lambda extracted: load_stock(
                merge_in_window_orders(validate_counts(extracted)))))
            return
        # --- end: a file-drop WMS source waits ---------------------------------------------------------

        with release_freeze(freeze_checkout()):
            loaded = load_stock(merge_in_window_orders(validate_counts(extract_wms_counts())))
        judge_drift(loaded)  # outside the freeze: checkout reopens without waiting for it

    return bound_tasks(sync_dag(), settings)  # no task runs unbounded
