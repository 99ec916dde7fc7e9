"""What the sync code is handed by the layers above it, once per process, when
include.stocksync.airflow is imported (include/stocksync/airflow/wiring.py): the writers of the run
and plan reports (ui/report.py: pages sit above the sync code and it never imports them) and the
opener of a file drop's folder (Airflow's `ObjectStoragePath`: only the Airflow layer imports
Airflow). Using one that was never handed down is an error saying so, never a silent skip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

    from include.stocksync.config.settings import Settings
    from include.stocksync.sync.guardrails import Guardrail


class ReportWriter(Protocol):
    """ui/report.py's `write_report` and `write_plan_report`."""

    def write_report(self, conn: psycopg.Connection, settings: Settings, run_id: str) -> Path: ...

    def write_plan_report(self, conn: psycopg.Connection, settings: Settings, run_id: str, plan_table: str,
                          stopping: Sequence[Guardrail] = ()) -> Path: ...


class FolderOpener(Protocol):
    """A folder of any object store (file://, s3://, gs://, sftp://...) as a path-like object:
    Airflow's `ObjectStoragePath(location, conn_id=...)`."""

    def __call__(self, location: str, conn_id: str | None) -> Any: ...


_reports: ReportWriter | None = None
_folders: FolderOpener | None = None
NOT_WIRED = "{what} was never handed to the sync code in this process: include.stocksync.airflow hands it " \
            "down when it is imported (import it before running the pipeline outside a DAG)"


def write_reports_with(writer: ReportWriter) -> None:
    global _reports
    _reports = writer


def open_folders_with(opener: FolderOpener) -> None:
    global _folders
    _folders = opener


def reports() -> ReportWriter:
    if _reports is None:
        raise RuntimeError(NOT_WIRED.format(what="the report writer (ui/report.py)"))
    return _reports


def open_folder(location: str, conn_id: str | None) -> Any:
    if _folders is None:
        raise RuntimeError(NOT_WIRED.format(what="the object-storage folder opener (Airflow's ObjectStoragePath)"))
    return _folders(location, conn_id)
