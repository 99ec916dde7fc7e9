"""The sync DAGs' shape on a file-drop WMS source (`wms_source: file`): the wait comes
before the setup (checkout is not frozen while the file is awaited), the file is settled by a
teardown after the freeze is released, and every task follows the DAGs' declaration rules."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.airflow.alerts import SyncFailureNotifier

SYNC_DAGS = ("inventory_nightly_sync", "inventory_full_push")


@pytest.fixture
def file_dagbag(dagbag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("STOCKSYNC_WMS_SOURCE", "file")
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__LOCATION", tmp_path.as_uri())
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__WAIT_DEADLINE_SECONDS", "7200")
    bag = DagBag(dag_folder=dagbag.dag_folder)
    assert bag.import_errors == {}
    return bag


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_the_wait_comes_before_the_freeze(file_dagbag: Any, dag_id: str) -> None:
    from include.stocksync.airflow.file_tasks import WmsFileSensor

    dag = file_dagbag.get_dag(dag_id)
    order = ["wait_for_wms_file", "freeze_checkout", "extract_wms_counts", "validate_counts",
             "merge_in_window_orders", "load_stock", "release_freeze", "settle_wms_file"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    wait = dag.get_task("wait_for_wms_file")
    assert isinstance(wait, WmsFileSensor) and not wait.upstream_task_ids and not wait.is_setup
    assert dag.get_task("freeze_checkout").is_setup
    settle = dag.get_task("settle_wms_file")
    assert settle.is_teardown and "freeze_checkout" in settle.upstream_task_ids
    # a general per-task bound may not cut the (deferred) wait short of its deadline
    assert wait.execution_timeout >= timedelta(seconds=7200)
    wait.execution_timeout = timedelta(seconds=120)
    assert wait.execution_timeout >= timedelta(seconds=7200)


@pytest.mark.parametrize("dag_id", SYNC_DAGS)
def test_every_task_is_declared_as_on_the_http_source(file_dagbag: Any, dag_id: str) -> None:
    for task in file_dagbag.get_dag(dag_id).tasks:
        assert task.owner == "stocksync" and task.retries >= 2, task.task_id
        assert task.doc_md or task.doc, (task.task_id, "task needs a docstring")
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        notifiers = [cb for cb in callbacks if isinstance(cb, SyncFailureNotifier)]
        assert notifiers, task.task_id
        if task.task_id == "wait_for_wms_file":  # no teardown follows a failed wait: alert at once
            assert all(not n.defer_delivery for n in notifiers)
