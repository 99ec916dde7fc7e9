"""The time bounds declared on the DagBag: every task of every stocksync DAG has its execution_timeout
from the config, the watchdog DAG is declared like the others and sends its own alerts, the
nightly (only) declares its DeadlineAlert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.stocksync.config.settings import load_settings


def test_every_task_has_its_configured_execution_timeout(dagbag: Any) -> None:
    ops = load_settings().operations
    for dag_id in sorted(dagbag.dag_ids):
        for task in dagbag.get_dag(dag_id).tasks:
            assert task.execution_timeout is not None and task.execution_timeout.total_seconds() > 0, (dag_id, task)
    for dag_id in ("inventory_nightly_sync", "inventory_full_push", "stocksync_watchdog"):
        for task in dagbag.get_dag(dag_id).tasks:
            assert task.execution_timeout == timedelta(seconds=ops.task_timeout(task.task_id)), (dag_id, task.task_id)


def test_the_watchdog_dag(dagbag: Any) -> None:
    from include.stocksync.airflow.alerts import SyncFailureNotifier

    dag = dagbag.get_dag("stocksync_watchdog")
    assert dag is not None and dag.schedule == load_settings().operations.watchdog_schedule == "*/5 * * * *"
    assert dag.max_active_runs == 1 and not dag.catchup
    assert [t.task_id for t in dag.topological_sort()] == ["reap_dead_runs", "check_freezes", "retry_alerts"]
    assert {dag.get_task(t).trigger_rule for t in ("check_freezes", "retry_alerts")} == {"all_done"}
    for task in dag.tasks:
        callbacks = task.on_failure_callback if isinstance(task.on_failure_callback, list) else [
            task.on_failure_callback]
        notifier = next(cb for cb in callbacks if isinstance(cb, SyncFailureNotifier))
        assert notifier.defer_delivery is False  # no teardown follows: its alerts go out at once
    sync = dagbag.get_dag("inventory_nightly_sync").tasks[0].on_failure_callback
    sync = sync if isinstance(sync, list) else [sync]
    assert all(cb.defer_delivery for cb in sync if isinstance(cb, SyncFailureNotifier))


def test_only_the_nightly_has_a_deadline(dagbag: Any) -> None:
    assert len(dagbag.get_dag("inventory_nightly_sync").deadline) == 1
    assert not dagbag.get_dag("inventory_full_push").deadline
    assert not dagbag.get_dag("stocksync_watchdog").deadline


def test_a_failure_alert_whose_template_cannot_be_rendered_still_alerts_with_plain_values(dagbag: Any) -> None:
    """A payload template that raises (a macro the DAG does not declare) must not lose the alert: the
    notifier falls back to the context's DAG, task, run and error, and says why."""
    from types import SimpleNamespace

    from include.stocksync.airflow.alerts import SyncFailureNotifier

    dag = dagbag.get_dag("orders_to_wms")
    assert dag is not None and "stocksync_report" not in (dag.user_defined_macros or {})
    notifier = SyncFailureNotifier(http_conn_id="stocksync_alerts", endpoint="", stocksync_conn_id=None)
    notifier.json = {"text": "{{ stocksync_report(run_id) }}"}  # a macro only some DAGs declared
    context = {"dag": dag, "run_id": "manual__x", "ti": SimpleNamespace(task_id="send_orders", try_number=2),
               "exception": ValueError("WMS refused our credentials")}
    notifier.render_template_fields(context)
    assert {k: notifier.json[k] for k in ("dag_id", "run_id", "task_id", "try_number", "error")} == {
        "dag_id": "orders_to_wms", "run_id": "manual__x", "task_id": "send_orders", "try_number": "2",
        "error": "WMS refused our credentials"}
    assert "stocksync_report" in notifier.json["render_error"]
    assert notifier.json["text"] == "stocksync: orders_to_wms failed at send_orders (run manual__x)"
