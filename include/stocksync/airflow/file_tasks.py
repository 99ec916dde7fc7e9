"""The sync DAGs on a file-drop WMS source (docs/file-drop-source.md): the wait, the
extract and the settling of the file, wired around the setup, validation, merge, load and teardown
that `dag_factory.build_sync_dag` builds for every source (which imports this module; both take
their shared helpers from `task_support`).

    wait_for_wms_file (deferred) >> freeze_checkout (setup) >> extract_wms_counts (the file)
        >> validate_counts >> merge_in_window_orders >> load_stock >> release_freeze (teardown)
        >> settle_wms_file (teardown: processed/ or rejected/)

The wait comes before the setup: checkout stays open however long the WMS takes to drop its
file, and a file that never comes ends the run (with its alert) before anything is frozen or
opened. While it waits the sensor holds no worker slot: it defers to `WmsFileTrigger`, which
looks at the drop folder every `poke_interval_seconds` from the triggerer until a complete file
is there or the deadline passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

from include.stocksync.airflow.task_support import _fail_fast, _shop, _stocksync_dsn, default_args
from include.stocksync.config.settings import Settings

log = logging.getLogger(__name__)

WAIT_TASK_ID = "wait_for_wms_file"


class WmsFileTrigger(BaseTrigger):
    """Fires once: `{"status": "found", "file": ...}` when a complete file (data + manifest) is in
    the drop folder, or `{"status": "deadline"}` when `deadline` (ISO time) passes first. A store
    that fails to list is logged and asked again at the next look: the deadline bounds the wait."""

    def __init__(self, *, location: str, conn_id: str | None, file_glob: str, manifest_suffix: str,
                 deadline: str, poke_interval: float) -> None:
        super().__init__()
        self.location = location
        self.conn_id = conn_id
        self.file_glob = file_glob
        self.manifest_suffix = manifest_suffix
        self.deadline = deadline
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "location": self.location, "conn_id": self.conn_id, "file_glob": self.file_glob,
            "manifest_suffix": self.manifest_suffix, "deadline": self.deadline, "poke_interval": self.poke_interval})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from include.stocksync.sync.file_drop import find_ready

        look = sync_to_async(find_ready)  # ObjectStoragePath is blocking I/O: off the triggerer's loop
        deadline = datetime.fromisoformat(self.deadline)
        while True:
            try:
                found = await look(self.location, self.conn_id, self.file_glob, self.manifest_suffix)
            except Exception:  # a store that is briefly unreachable: look again
                log.warning("could not list %s; looking again in %.0f s", self.location, self.poke_interval,
                            exc_info=True)
                found = None
            if found is not None:
                yield TriggerEvent({"status": "found", "file": found})
                return
            left = (deadline - datetime.now(timezone.utc)).total_seconds()
            if left <= 0:
                yield TriggerEvent({"status": "deadline"})
                return
            await asyncio.sleep(min(self.poke_interval, left))


class WmsFileSensor(BaseSensorOperator):
    """Waits, deferred, for the newest complete WMS stock file in the drop folder and hands it
    (names, not contents) to the extract task. The deadline counts from the run's start, so a
    retry does not wait longer. No file by then: a data file without its manifest (or a manifest
    without its data file) is refused to `rejected/<date>/`, and the task fails without retries,
    which alerts (the DAG's failure notifier); nothing was frozen or opened."""

    def __init__(self, **kwargs: Any) -> None:
        from include.stocksync.config.settings import process_settings

        fs = process_settings().file_source
        kwargs.setdefault("poke_interval", fs.poke_interval_seconds)
        kwargs.setdefault("timeout", fs.wait_deadline_seconds + fs.poke_interval_seconds)
        # the trigger's time counts against execution_timeout: it must outlast the wait
        kwargs.setdefault("execution_timeout", timedelta(seconds=fs.wait_deadline_seconds + 600))
        kwargs.setdefault("doc_md", type(self).__doc__)
        super().__init__(**kwargs)

    @property
    def execution_timeout(self) -> timedelta | None:
        return self._execution_timeout

    @execution_timeout.setter
    def execution_timeout(self, value: timedelta | None) -> None:
        """Never shorter than the wait: a deferred task's trigger ends at its execution_timeout, so
        a general per-task bound (operations.*_timeout_seconds) would cut the wait for the file
        short of `file_source.wait_deadline_seconds`."""
        floor = timedelta(seconds=self._settings().wait_deadline_seconds + 600)
        self._execution_timeout = None if value is None else max(value, floor)

    @staticmethod
    def _settings() -> Any:
        from include.stocksync.config.settings import process_settings

        return process_settings().file_source

    def poke(self, context: Any) -> bool | PokeReturnValue:
        from include.stocksync.sync.file_drop import find_ready_for

        found = find_ready_for(self._settings())
        return PokeReturnValue(is_done=found is not None, xcom_value=found)

    def execute(self, context: Any) -> Any:
        from include.stocksync.sync.file_drop import find_ready_for

        fs = self._settings()
        found = find_ready_for(fs)  # already there: no deferral
        if found is not None:
            return found
        deadline = self._deadline(context, fs.wait_deadline_seconds)
        if deadline <= datetime.now(timezone.utc):
            self._refuse(context)
        log.info("no complete file in %s yet; waiting (deferred) until %s", fs.location, deadline.isoformat())
        self.defer(trigger=WmsFileTrigger(location=fs.location, conn_id=fs.conn_id, file_glob=fs.file_glob,
                                          manifest_suffix=fs.manifest_suffix, deadline=deadline.isoformat(),
                                          poke_interval=fs.poke_interval_seconds),
                   method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        from include.stocksync.sync.file_drop import find_ready_for

        if event and event.get("status") == "found":
            return event["file"]
        found = find_ready_for(self._settings())  # one last look: it may have come with the deadline
        if found is not None:
            return found
        self._refuse(context)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout:  # Airflow's own timeout came first: the same end as our deadline
            self._refuse(context)

    @staticmethod
    def _deadline(context: Any, seconds: float) -> datetime:
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or datetime.now(timezone.utc)
        if started.tzinfo is None:
            started = started.replace(tzinfo=timezone.utc)
        return started + timedelta(seconds=seconds)

    def _refuse(self, context: Any) -> None:
        from include.stocksync.sync.file_drop import refuse_at_deadline

        fs = self._settings()
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or datetime.now(timezone.utc)
        if started.tzinfo is None:
            started = started.replace(tzinfo=timezone.utc)
        try:
            dsn: str | None = _stocksync_dsn()
        except Exception:  # the refusal and its alert go on without the record
            log.exception("no shop database to record the refusal in")
            dsn = None
        message = refuse_at_deadline(dsn, fs, run_id=str(context.get("run_id")), dag_id=context["dag"].dag_id,
                                     waited_seconds=(datetime.now(timezone.utc) - started).total_seconds())
        raise AirflowFailException(message)


def wire_file_source(settings: Settings, freeze_checkout: Callable[[], Any], release_freeze: Callable[[Any], Any],
                     work: Callable[[Any], Any]) -> Any:
    """Lay out a sync DAG on the file source (see the module docstring) inside the `@dag`
    function: `work(extracted)` chains validation, merge and load as for the HTTP source.
    Returns what `work` returns (the load's output)."""
    from airflow.sdk import task, teardown

    @task(task_id="extract_wms_counts")
    def extract_wms_file(found: dict[str, Any], run_id: str | None = None, dag: Any = None) -> dict[str, Any]:
        """Stream the file the wait found into the staging table (COPY, in chunks), checking it
        against its manifest (checksum, row count) and the snapshot's time stamps; a file already
        applied ends the run as a duplicate."""
        from include.stocksync.sync import file_drop

        with _fail_fast():
            return file_drop.extract_file(_stocksync_dsn(), run_id=str(run_id), dag_id=dag.dag_id, found=found,
                                          shop=_shop()).as_dict()

    @teardown
    def settle_wms_file(found: dict[str, Any], released: Any, run_id: str | None = None,
                        dag: Any = None) -> dict[str, Any]:
        """After the freeze is released: move the file to processed/<date>/ (applied or duplicate) or
        rejected/<date>/ with its reason (a permanent failure); leave it for the next run otherwise."""
        from include.stocksync.sync import file_drop

        return file_drop.settle(_stocksync_dsn(), run_id=str(run_id), dag_id=dag.dag_id)

    # no teardown follows a failed wait (the setup never ran): its alert goes out at once
    now_alerts = default_args(settings, defer_alerts=False)["on_failure_callback"]
    wait = WmsFileSensor(task_id=WAIT_TASK_ID, on_failure_callback=now_alerts)
    frozen = freeze_checkout()
    wait >> frozen
    released = release_freeze(frozen)
    with released:
        loaded = work(extract_wms_file(wait.output))
    settled = settle_wms_file(wait.output, released)
    frozen >> settled
    return loaded
