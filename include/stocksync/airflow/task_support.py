"""What every stocksync DAG shares (the sync DAGs, the file-drop wiring, the loop DAGs, the
watchdog): start date, owner, retries and the failure notifier, per-task time bounds, permanent
errors failing at once, the shop database's DSN and the shop-zone timetable. The DAG builders import
this module and never each other, so the Airflow layer has no import cycle.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param

from include.stocksync.airflow.alerts import SyncFailureNotifier
from include.stocksync.config.settings import Settings, process_settings
from include.stocksync.runs.lifecycle import AirflowView

if TYPE_CHECKING:
    from include.stocksync.shop.port import ShopPort

log = logging.getLogger(__name__)

START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)
OWNER = "stocksync"

# The JSON Schema draft the trigger form's parameters are written in. Airflow validates a parameter
# against its schema each time it resolves it, and serializing a DAG resolves every parameter of
# every task twice (the DAG processor on each parse, `dag.test()` for every DAG of the folder).
# jsonschema first checks the schema itself against its draft's meta-schema: 1.3 ms under the
# default 2020-12 (its dynamic references), far less under draft 7, which has every keyword these
# parameters use (type, enum, items, minimum, minLength, maxLength, maxItems) with the same meaning.
# A resolve: 1.55 -> 0.49 ms on the two-core machine.
PARAM_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


def form_param(default: Any, **schema: Any) -> Param:
    """A trigger-form parameter whose schema names its draft (`PARAM_SCHEMA_DRAFT`)."""
    return Param(default, **{"$schema": PARAM_SCHEMA_DRAFT}, **schema)


@contextmanager
def _fail_fast() -> Iterator[None]:
    """Errors that a retry cannot fix (a refused parameter, a contract or validation error, a
    guardrail, a data error) fail the task at once, without Airflow retries, so the teardown
    releases the freeze right away; transient ones are left to the retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.stocksync.domain.errors import is_permanent

    try:
        yield
    except AirflowFailException:
        raise
    except Exception as exc:
        if is_permanent(exc):
            raise AirflowFailException(str(exc)) from exc
        raise


def _stocksync_dsn() -> str:
    """stocksync's own database of this deployment (connection ids are deployment settings, not a run's)."""
    from include.stocksync.airflow.connections import stocksync_dsn

    return stocksync_dsn(process_settings())


def _shop() -> ShopPort:
    """The deployment's shop, behind the shop port (`shop_platform` over `shop_conn_id`)."""
    from include.stocksync.airflow.connections import shop_port

    return shop_port(process_settings())


def _note_lost_tries(run_id: str | None, dag: Any, ti: Any, stage: str) -> None:
    """An earlier try of this task that left no trace on the run (its worker was lost) is recorded
    and alerted by this try (dead_runs.note_lost_tries)."""
    from include.stocksync.ops.dead_runs import note_lost_tries

    note_lost_tries(_stocksync_dsn(), run_id=str(run_id), dag_id=dag.dag_id, task_id=ti.task_id, stage=stage,
                    try_number=getattr(ti, "try_number", None))


def default_args(settings: Settings, *, defer_alerts: bool = True) -> dict[str, Any]:
    """What every stocksync DAG's tasks share: owner, retries with backoff, the failure notifier
    (`defer_alerts=False` for a DAG without a teardown to send them, the watchdog)."""
    return {
        "owner": OWNER,
        "retries": max(2, settings.task_retries),
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": settings.retry_exponential_backoff,
        "max_retry_delay": timedelta(seconds=settings.max_retry_delay_seconds),
        # no task runs unbounded (the sync DAGs and the watchdog set their own: bound_tasks)
        "execution_timeout": timedelta(seconds=settings.operations.default_task_timeout_seconds),
        # alerts are queued and recorded in stocksync's own database (with its run records)
        "on_failure_callback": SyncFailureNotifier(
            http_conn_id=settings.alerts_conn_id, endpoint=settings.alerts_endpoint,
            stocksync_conn_id=settings.stocksync_conn_id or settings.shop_conn_id, defer_delivery=defer_alerts),
    }


# --- bounded time for every task; the nightly's deadline ------------------------------------
def bound_tasks(built: DAG, settings: Settings) -> DAG:
    """Give every task its `execution_timeout` (config operations.<task>_timeout_seconds)."""
    for operator in built.tasks:
        operator.execution_timeout = timedelta(seconds=settings.operations.task_timeout(operator.task_id))
    if built.deadline:
        built.test = functools.partial(_test_without_deadline, built)  # type: ignore[method-assign]
    return built


def _test_without_deadline(built: DAG, *args: Any, **kwargs: Any) -> Any:
    """`dag.test()` without the DeadlineAlert. Airflow 3.3.2's dag.test() cannot finish a DAG that
    has one (on success it looks the alerts up by id, but the DAG it runs holds them inline:
    AttributeError 'dict' object has no attribute 'hex'), and deadlines are evaluated by the
    scheduler and run by the triggerer, which dag.test() does not use anyway. The demo, the
    benchmark and the tests run the nightly with dag.test(); the deployed DAG keeps its deadline."""
    saved = built.deadline
    built.deadline = None
    try:
        return DAG.test(built, *args, **kwargs)
    finally:
        built.deadline = saved
# --- end: bounded time for every task; the nightly's deadline ---------------------------------


def shop_timetable(cron: str, zone: str) -> Any:
    """A cron expression read in the shop's zone (`shop_timezone`): Airflow's
    CronTriggerTimetable follows its daylight saving, so 02:30 stays 02:30 local all year; on the
    spring night that has no 02:30 it runs at the first time after the gap, and on the autumn night
    that has two it runs once."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=zone)


def next_run_after(cron: str, zone: str, now: datetime) -> datetime | None:
    """When the nightly's timetable (`shop_timetable`) runs next after `now`; None when Airflow
    cannot read the expression (a bad cron fails the DAG's import with Airflow's own message)."""
    from airflow.timetables.base import TimeRestriction

    try:
        info = shop_timetable(cron, zone).next_dagrun_info(
            last_automated_data_interval=None, restriction=TimeRestriction(earliest=now, latest=None, catchup=True))
    except Exception:
        return None
    return info.run_after if info is not None else None


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
