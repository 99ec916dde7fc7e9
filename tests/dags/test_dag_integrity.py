"""DAG integrity over the DagBag: imports, declaration rules, alerting, Airflow 3 lint."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.config.settings import PROJECT_ROOT

APPROVED_TAGS = {"stocksync", "inventory", "nightly", "ops", "orders", "intraday"}
SYNC_DAGS = {"inventory_nightly_sync", "inventory_full_push"}
LOOP_DAGS = {"orders_to_wms", "inventory_intraday_sync"}  # the order push and the intraday sync
EXPECTED_DAGS = SYNC_DAGS | LOOP_DAGS


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert EXPECTED_DAGS <= set(dagbag.dag_ids)


def _dags(dagbag: Any) -> list[Any]:
    return [dagbag.get_dag(dag_id) for dag_id in sorted(dagbag.dag_ids)]


def test_every_dag_is_declared_the_same_way(dagbag: Any) -> None:
    from include.stocksync.airflow.alerts import SyncFailureNotifier

    for dag in _dags(dagbag):
        assert dag.tags and set(dag.tags) <= APPROVED_TAGS, (dag.dag_id, dag.tags)
        assert dag.doc_md and dag.doc_md.strip(), dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        for task in dag.tasks:
            assert task.owner == "stocksync", (dag.dag_id, task.task_id)
            assert task.retries >= 2, (dag.dag_id, task.task_id, task.retries)
            assert isinstance(task.retry_delay, timedelta) and task.retry_delay.total_seconds() > 0
            assert task.retry_exponential_backoff and float(task.retry_exponential_backoff) > 1
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(isinstance(cb, SyncFailureNotifier) for cb in callbacks), (dag.dag_id, task.task_id)
            assert task.doc_md or task.doc, (dag.dag_id, task.task_id, "task needs a docstring")


@pytest.mark.parametrize("dag_id", sorted(SYNC_DAGS))
def test_sync_dag_shape(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.get_dag(dag_id)
    order = ["freeze_checkout", "extract_wms_counts", "validate_counts", "merge_in_window_orders", "load_stock"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("freeze_checkout").is_setup
    release = dag.get_task("release_freeze")
    assert release.is_teardown
    assert "freeze_checkout" in release.upstream_task_ids
    assert "load_stock" in release.upstream_task_ids
    assert dag.get_task("load_stock").pool == "stocksync_shop_writer"


def test_full_push_params(dagbag: Any) -> None:
    params = dagbag.get_dag("inventory_full_push").params
    for name in ("dry_run", "skus", "freeze_mode", "adjustment_mode", "override_guardrails", "override_reason"):
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
    assert params["dry_run"] is True
    assert params.get_param("freeze_mode").schema["enum"] == ["full", "apply", "none"]
    assert dagbag.get_dag("inventory_full_push").schedule is None
    nightly = dagbag.get_dag("inventory_nightly_sync").timetable  # the cron read in the shop's zone
    assert (nightly._expression, str(nightly._timezone.name)) == ("30 2 * * *", "UTC")


@pytest.mark.parametrize(("name", "bad"), [
    ("skus", [""]), ("skus", ["x" * 65]), ("skus", [3]), ("skus", "SKU-1"),
    ("freeze_mode", "partial"), ("dry_run", "yes"), ("override_reason", "r" * 1001), ("override_reason", 5),
])
def test_full_push_params_refuse_what_their_schema_forbids(dagbag: Any, name: str, bad: Any) -> None:
    """The parameters declare JSON Schema draft 7 (cheaper for Airflow to check on every resolve):
    each still refuses a value its keywords forbid, and takes its default."""
    from airflow.sdk.exceptions import ParamValidationError

    param = dagbag.get_dag("inventory_full_push").params.get_param(name)
    assert param.schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    param.resolve()  # the default passes
    with pytest.raises(ParamValidationError):
        param.resolve(bad)


def test_dag_files_have_no_parse_time_io() -> None:
    """DAG files wire tasks only: no DB, HTTP, Variable or Connection access at module level."""
    forbidden = ("psycopg", "requests", "Variable.get", "get_connection", "BaseHook", "connect(")
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        for word in forbidden:
            assert word not in text, f"{path.name} uses {word} at parse time"


@pytest.mark.parametrize("target", ["dags", "include", "plugins"])
def test_airflow3_lint(target: str) -> None:
    path = Path(PROJECT_ROOT / target)
    if not path.exists():
        pytest.skip(f"{target}/ does not exist")
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--select", "AIR3", "--preview", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- orders_to_wms and inventory_intraday_sync --------------------------------------------

def test_loop_dags_are_scheduled_from_the_config(dagbag: Any) -> None:
    from include.stocksync.config.settings import load_settings

    loop = load_settings().loop
    assert dagbag.get_dag("orders_to_wms").schedule == loop.orders_schedule
    assert dagbag.get_dag("inventory_intraday_sync").schedule == loop.intraday_schedule
    params = dagbag.get_dag("orders_to_wms").params
    for name in ("requeue_order_ids", "requeue_all"):
        param = params.get_param(name)
        assert param.schema.get("title") and param.description, name
    assert params["requeue_order_ids"] == [] and params["requeue_all"] is False


def test_orders_to_wms_shape(dagbag: Any) -> None:
    dag = dagbag.get_dag("orders_to_wms")
    assert {t.task_id for t in dag.tasks} == {"send_orders", "send_cancellations"}
    assert "send_cancellations" in dag.get_task("send_orders").downstream_task_ids


def test_intraday_shape(dagbag: Any) -> None:
    dag = dagbag.get_dag("inventory_intraday_sync")
    order = ["open_intraday_run", "read_change_feed", "validate_delta", "merge_delta", "apply_delta"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    assert dag.get_task("open_intraday_run").is_setup
    close = dag.get_task("close_intraday_run")
    assert close.is_teardown and {"open_intraday_run", "apply_delta"} <= close.upstream_task_ids
    # the intraday apply never writes at the same time as the nightly's or a push's load
    assert dag.get_task("apply_delta").pool == dagbag.get_dag("inventory_nightly_sync").get_task("load_stock").pool
    assert "trigger_full_sync" in dag.get_task("gap_wants_full_sync").downstream_task_ids
    assert "freeze" not in " ".join(t.task_id for t in dag.tasks)  # checkout is never frozen


def test_nightly_judges_its_drift_after_the_load(dagbag: Any) -> None:
    for dag_id in SYNC_DAGS:
        dag = dagbag.get_dag(dag_id)
        assert "judge_drift" in dag.get_task("load_stock").downstream_task_ids
        assert "judge_drift" not in dag.get_task("release_freeze").upstream_task_ids
