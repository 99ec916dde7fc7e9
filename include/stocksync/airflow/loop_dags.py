"""The DAGs of the other half of the loop (docs/order-push-and-intraday.md): `orders_to_wms` and
`inventory_intraday_sync`, built here and declared by their files in `dags/` (wiring only).

They are declared like the sync DAGs (`dag_factory.py`): schedule from the config, fixed aware
start date, no catchup, one active run, tags, doc, `default_args(settings)` (owner, retries with
backoff, the failure notifier). Tasks call the plain functions of `order_push.py` and
`intraday.py`; nothing touches a database or the network at parse time. The intraday apply runs
in the writer pool (`WRITER_POOL`, one slot) with the nightly's and the push's loads.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, dag, setup, task, teardown

from include.stocksync.airflow.task_support import (
    START_DATE,
    _fail_fast,
    _shop,
    _stocksync_dsn,
    airflow_view,
    default_args,
    form_param,
)
from include.stocksync.config.settings import WRITER_POOL, Settings, process_settings
from include.stocksync.runs.reports import report_file, report_url

ORDERS_DAG_ID = "orders_to_wms"
INTRADAY_DAG_ID = "inventory_intraday_sync"
MAX_REQUEUE_IDS = 10000


def _wms_session(settings: Settings, method: str) -> tuple[Any, str]:
    """A `requests.Session` with the WMS bearer token (the WMS Connection's password) and its base URL."""
    from airflow.providers.http.hooks.http import HttpHook
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowFailException

    conn_id = settings.wms_conn_id
    connection = BaseHook.get_connection(conn_id)
    if not connection.password:
        raise AirflowFailException(f"Connection {conn_id!r} has no password: put the WMS bearer token there")
    hook = HttpHook(method=method, http_conn_id=conn_id)
    return hook.get_conn(headers={"Authorization": f"Bearer {connection.password}"}), hook.base_url


def _alert(settings: Settings, payload: dict[str, Any], *, run_id: str, dag_id: str, task_id: str,
           try_number: int | None) -> None:
    from include.stocksync.ops.notices import post_alert

    post_alert(_stocksync_dsn(), payload, conn_id=settings.alerts_conn_id, endpoint=settings.alerts_endpoint,
               run_id=run_id, dag_id=dag_id, task_id=task_id, try_number=try_number, settings=settings)


def build_orders_dag(doc_md: str | None) -> DAG:
    """orders_to_wms: re-queue what ops asked for, send the queue, send cancellations."""
    settings = process_settings()

    @dag(dag_id=ORDERS_DAG_ID, schedule=settings.loop.orders_schedule, start_date=START_DATE, catchup=False,
         max_active_runs=1, tags=["stocksync", "orders"], doc_md=doc_md,
         # no teardown here to send deferred failure alerts: the notifier sends them at once
         default_args=default_args(settings, defer_alerts=False),
         params={
             "requeue_order_ids": form_param([], type="array", items={"type": "integer", "minimum": 1},
                                        maxItems=MAX_REQUEUE_IDS, title="Re-queue orders",
                                        description="Shop order ids held in the dead-letter table to send again "
                                                    "in this run (after fixing why the WMS refused them)."),
             "requeue_all": form_param(False, type="boolean", title="Re-queue every held order",
                                  description="Send every order held in the dead-letter table again."),
         })
    def orders_dag() -> None:
        @task
        def send_orders(params: dict[str, Any] | None = None, dag_run: Any = None, run_id: str | None = None,
                        ti: Any = None) -> dict[str, Any]:
            """Re-queue the orders named by the run's parameters, then send unacknowledged orders oldest
            first in batches (Idempotency-Key per order) and record the WMS's receipt time on each; orders
            the WMS refuses are held in stocksync.order_dead_letters, one alert per batch."""
            from include.stocksync.sync import order_push

            conf = {**dict(params or {}), **(getattr(dag_run, "conf", None) or {})}
            ids = conf.get("requeue_order_ids") or []
            everything = conf.get("requeue_all") is True
            if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(f"requeue_order_ids must be a list of order ids; got {ids!r:.200}")
            run_settings = process_settings()
            dsn = _stocksync_dsn()
            session, base_url = _wms_session(run_settings, "POST")
            client = order_push.WmsOrders(session, base_url, timeout=run_settings.loop.order_timeout_seconds)

            def alert(batch: int, letters: list[order_push.DeadLetter]) -> None:
                _alert(run_settings, order_push.dead_letter_alert(dag_id=ORDERS_DAG_ID, run_id=str(run_id), batch=batch,
                                                    letters=letters),
                       run_id=str(run_id), dag_id=ORDERS_DAG_ID, task_id="send_orders",
                       try_number=getattr(ti, "try_number", None))

            requeued = order_push.requeue(dsn, order_ids=ids, everything=everything, run_id=str(run_id),
                                          by=f"{ORDERS_DAG_ID} run {run_id} "
                                             f"({getattr(dag_run, 'triggering_user_name', None) or 'schedule'})")
            try:
                with _fail_fast():
                    result = order_push.push_orders(dsn, client, run_settings, run_id=str(run_id),
                                                    on_dead_letters=alert, shop=_shop())
            except Exception as exc:
                order_push.finish_run(dsn, str(run_id), f"{type(exc).__name__}: {exc}"[:2000])
                raise
            return {**result.as_dict(), "requeued": len(requeued)}

        @task
        def send_cancellations(sent: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            """Cancel in the WMS (same key) the acknowledged orders the shop has since cancelled, once each;
            a refusal (already shipped) is recorded, not retried."""
            from include.stocksync.sync import order_push

            run_settings = process_settings()
            dsn = _stocksync_dsn()
            session, base_url = _wms_session(run_settings, "POST")
            client = order_push.WmsOrders(session, base_url, timeout=run_settings.loop.order_timeout_seconds)
            error = None
            try:
                with _fail_fast():
                    result = order_push.push_cancellations(dsn, client, run_settings, run_id=str(run_id),
                                                           shop=_shop())
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:2000]
                raise
            finally:
                figures = order_push.finish_run(dsn, str(run_id), error)
            return {"cancels_sent": result.cancels_sent, "cancels_refused": result.cancels_refused,
                    "run": figures}

        send_cancellations(send_orders())

    return orders_dag()


def build_intraday_dag(doc_md: str | None) -> DAG:
    """inventory_intraday_sync: open → read the change feed → validate → merge → apply → close."""
    settings = process_settings()

    @dag(dag_id=INTRADAY_DAG_ID, schedule=settings.loop.intraday_schedule, start_date=START_DATE, catchup=False,
         max_active_runs=1, tags=["stocksync", "inventory", "intraday"], doc_md=doc_md,
         default_args=default_args(settings),
         user_defined_macros={"stocksync_report": report_file, "stocksync_report_url": report_url})
    def intraday_dag() -> None:
        @setup
        def open_intraday_run(dag_run: Any = None, run_id: str | None = None) -> dict[str, Any]:
            """Open the run record (this DAG's id, freeze mode none: checkout is never frozen); while a
            full sync is running the run ends `skipped`, recorded."""
            from include.stocksync.sync import intraday

            with _fail_fast():
                return intraday.open_intraday(_stocksync_dsn(), run_id=str(run_id), settings=process_settings(),
                                              triggered_by=getattr(dag_run, "triggering_user_name", None))

        @task
        def read_change_feed(opened: dict[str, Any], run_id: str | None = None, ti: Any = None) -> dict[str, Any]:
            """Walk the WMS change feed after the last applied sequence and stage the delta. A gap (the
            feed no longer reaches our sequence, sequences jump, the WMS went back) ends the run as
            `gap`: nothing applied, one alert per gap, the next full sync repairs it. A stalled feed ends
            it `stalled` (its one alert per stall is queued for the teardown to send)."""
            from include.stocksync.sync import intraday

            run_settings = process_settings()
            session, base_url = _wms_session(run_settings, "GET")
            with _fail_fast():
                result = intraday.read_feed(_stocksync_dsn(), run_id=str(run_id), session=session, base_url=base_url)
            if result.get("alert"):
                _alert(run_settings, result["alert"], run_id=str(run_id), dag_id=INTRADAY_DAG_ID,
                       task_id="read_change_feed", try_number=getattr(ti, "try_number", None))
                intraday.mark_gap_alerted(_stocksync_dsn(), str(run_id))
                result["alert"] = True
            return result

        @task
        def validate_delta(read: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            """The nightly's data-quality checks on the staged delta, scaled (no row-count band)."""
            from airflow.sdk.exceptions import AirflowSkipException

            from include.stocksync.sync import intraday

            if read.get("state") != "staged":
                raise AirflowSkipException(f"nothing staged: {read.get('state')}")
            with _fail_fast():
                result = intraday.validate_delta(_stocksync_dsn(), run_id=str(run_id), shop=_shop())
            if result is None:
                raise AirflowSkipException("the run is no longer running")
            return result

        @task
        def merge_delta(validated: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            """Plan the delta's SKUs with the order adjustment; the delta guard (SKUs zeroed or changed,
            as shares of the whole catalog) stops a broken feed before any write."""
            from include.stocksync.sync import intraday

            with _fail_fast():
                return intraday.merge_delta(_stocksync_dsn(), run_id=str(run_id), shop=_shop()) or {}

        @task(pool=WRITER_POOL)
        def apply_delta(plan: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            """The nightly's atomic, seq-guarded apply: stock lock, in-window demand recomputed under it,
            one set-based write, audit rows; no freeze. In the writer pool with the full syncs."""
            from include.stocksync.sync import intraday

            with _fail_fast():
                return intraday.apply_delta(_stocksync_dsn(), run_id=str(run_id), shop=_shop()) or {}

        @task.short_circuit
        def gap_wants_full_sync(read: dict[str, Any]) -> bool:
            """On a gap, go on to trigger the nightly sync only when `loop.gap_triggers_full_sync` is on."""
            return read.get("state") == "gap" and process_settings().loop.gap_triggers_full_sync

        @teardown
        def close_intraday_run(opened: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
            """Close the run record, write the run report, drop expired staging. Runs whatever failed."""
            from include.stocksync.sync import intraday

            return intraday.close(_stocksync_dsn(), run_id=str(run_id), lookup=airflow_view, shop=_shop())

        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        opened = open_intraday_run()
        with close_intraday_run(opened):
            read = read_change_feed(opened)
            apply_delta(merge_delta(validate_delta(read)))
        gap_wants_full_sync(read) >> TriggerDagRunOperator(
            task_id="trigger_full_sync", trigger_dag_id=settings.loop.full_sync_dag_ids[0],
            trigger_run_id="gap__{{ run_id }}", conf={}, wait_for_completion=False,
            doc_md="Trigger the nightly sync at once after a gap (`loop.gap_triggers_full_sync`).")

    return intraday_dag()
