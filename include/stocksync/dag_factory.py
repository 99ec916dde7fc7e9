"""The sync DAG, built once here and used by every stocksync DAG file.

Tasks are thin: they resolve the run's settings and connections, call the plain
functions in `include/stocksync/pipeline.py`, and pass references (table names, counts)
through XCom, never rows. The freeze is a setup task and its release a teardown, so the
release runs whatever fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, Param, dag, get_current_context, setup, task, teardown

from include.stocksync.alerts import SyncFailureNotifier
from include.stocksync.settings import ADJUSTMENT_MODES, FREEZE_MODES, WATERMARK_SOURCES, Settings, load_settings

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
OWNER = "stocksync"


def report_url(run_id: str) -> str:
    """Where a run's report is (a file path in the embedded default)."""
    from include.stocksync.report import report_path

    return str(report_path(load_settings(), run_id))


def run_params(settings: Settings) -> dict[str, Param]:
    """Typed parameters shown in the trigger form; defaults come from the config."""
    return {
        "freeze_mode": Param(settings.freeze_mode, type="string", enum=list(FREEZE_MODES), title="Freeze mode",
                             description="full: checkout closed for the whole run; apply: only around the apply "
                                         "transaction; none: never (the apply still keeps numbers right)."),
        "adjustment_mode": Param(settings.adjustment_mode, type="string", enum=list(ADJUSTMENT_MODES),
                                 title="Adjustment mode",
                                 description="What to subtract from the WMS figure: nothing, unsent orders, or "
                                             "unsent orders and active carts."),
        "watermark_source": Param(settings.watermark_source, type="string", enum=list(WATERMARK_SOURCES),
                                  title="Watermark source",
                                  description="wms: the WMS's orders_counted_until; request_time: orders placed "
                                              "after the snapshot request started count as unsent."),
    }


def _context_settings() -> tuple[dict[str, Any], Settings]:
    """The run's settings: config, then the run's params, then its conf (e.g. `page_size`)."""
    context = get_current_context()
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    return context, load_settings().for_run({**dict(context["params"]), **conf})


def _shop_dsn(settings: Settings) -> str:
    from airflow.sdk import BaseHook
    from psycopg.conninfo import make_conninfo

    conn = BaseHook.get_connection(settings.shop_conn_id)
    return make_conninfo(host=conn.host or "127.0.0.1", port=conn.port or 5432, user=conn.login or None,
                         password=conn.password or None, dbname=conn.schema or "postgres")


def build_sync_dag(*, dag_id: str, schedule: str | None, doc_md: str | None, tags: list[str]) -> DAG:
    """Build a sync DAG: freeze → extract → validate → merge → load → release."""
    settings = load_settings()
    default_args = {
        "owner": OWNER,
        "retries": max(2, settings.task_retries),
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": settings.retry_exponential_backoff,
        "max_retry_delay": timedelta(seconds=settings.max_retry_delay_seconds),
        "on_failure_callback": SyncFailureNotifier(http_conn_id=settings.alerts_conn_id,
                                                   endpoint=settings.alerts_endpoint),
    }

    @dag(dag_id=dag_id, schedule=schedule, start_date=START_DATE, catchup=False, max_active_runs=1,
         tags=tags, doc_md=doc_md, default_args=default_args, params=run_params(settings),
         user_defined_macros={"stocksync_report": report_url}, render_template_as_native_obj=False)
    def sync_dag() -> None:
        @setup
        def freeze_checkout() -> dict[str, Any]:
            """Open the run record and, in `full` freeze mode, close checkout (the site stays browsable)."""
            from include.stocksync import pipeline

            context, run_settings = _context_settings()
            dag_run = context["dag_run"]
            triggered_by = getattr(dag_run, "triggering_user_name", None)
            return pipeline.freeze_checkout(_shop_dsn(run_settings), run_id=context["run_id"],
                                            dag_id=context["dag"].dag_id, settings=run_settings,
                                            triggered_by=triggered_by)

        @task
        def extract_wms_counts() -> dict[str, Any]:
            """Walk every page of one WMS snapshot into an UNLOGGED staging table (COPY), with
            per-page retries and exponential backoff. Returns the table name and counts."""
            from airflow.providers.http.hooks.http import HttpHook
            from airflow.sdk import BaseHook

            from include.stocksync import pipeline

            context, run_settings = _context_settings()
            wms_conn = BaseHook.get_connection(run_settings.wms_conn_id)
            if not wms_conn.password:
                raise ValueError(f"Connection {run_settings.wms_conn_id!r} has no password: "
                                 "put the WMS bearer token there")
            hook = HttpHook(method="GET", http_conn_id=run_settings.wms_conn_id)
            session = hook.get_conn(headers={"Authorization": f"Bearer {wms_conn.password}"})
            result = pipeline.extract(_shop_dsn(run_settings), run_id=context["run_id"], settings=run_settings,
                                      session=session, base_url=hook.base_url)
            return result.as_dict()

        @task
        def validate_counts(extracted: dict[str, Any]) -> dict[str, Any]:
            """Run the Great Expectations suite on the staged counts; fail (nothing written)
            on any failed check. Results are stored per check in `stocksync.dq_results`."""
            from airflow.sdk.exceptions import AirflowFailException

            from include.stocksync import pipeline
            from include.stocksync.validate import ValidationFailed

            context, run_settings = _context_settings()
            try:
                result = pipeline.validate(_shop_dsn(run_settings), run_id=context["run_id"], settings=run_settings)
            except ValidationFailed as exc:
                # the same staged data fails the same way on a retry: fail now, alert once
                raise AirflowFailException(str(exc)) from exc
            return {"rows": result.rows, "valid": result.valid, "staging_table": extracted["staging_table"]}

        @task
        def merge_in_window_orders(validated: dict[str, Any]) -> dict[str, Any]:
            """Plan each SKU: `max(0, available - unsent orders - active carts)` against the
            current shop stock (a plan table; the apply recomputes inside its transaction)."""
            from include.stocksync import pipeline

            context, run_settings = _context_settings()
            return pipeline.merge(_shop_dsn(run_settings), run_id=context["run_id"], settings=run_settings).as_dict()

        @task
        def load_stock(plan: dict[str, Any]) -> dict[str, Any]:
            """Apply the plan in one transaction: lock, recompute the adjustment, one set-based
            UPDATE guarded by `seq`, audit rows, run record. Idempotent per run."""
            from include.stocksync import pipeline

            context, run_settings = _context_settings()
            return pipeline.load(_shop_dsn(run_settings), run_id=context["run_id"], settings=run_settings,
                                 plan_table=plan["plan_table"]).as_dict()

        @teardown
        def release_freeze(frozen: dict[str, Any]) -> dict[str, Any]:
            """Release the freezes this run set (never a manual one), store the freeze window,
            close the run record and write the run report. Runs whatever failed."""
            from include.stocksync import pipeline

            context, run_settings = _context_settings()
            return pipeline.release_freeze(_shop_dsn(run_settings), run_id=context["run_id"], settings=run_settings)

        with release_freeze(freeze_checkout()):
            load_stock(merge_in_window_orders(validate_counts(extract_wms_counts())))

    return sync_dag()
