"""Where a run's report is: its file on the disk of the workers (`reports_path/<run key>/`) and its
page as served by the "Stock sync" plugin of this Airflow. The pipeline records the path, alerts
carry both, the DAGs offer them as macros (`stocksync_report`, `stocksync_report_url`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from include.stocksync.config.display import base_url
from include.stocksync.config.settings import Settings, process_settings
from include.stocksync.store.db import run_key


def private_folder(directory: Path) -> Path:
    """`directory` (a run's report folder, or GX's folder beside them) made, or made again, 0700;
    the reports folder above it is created 0700 when it does not exist yet (an existing one keeps
    the mode it was given)."""
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode goes through the umask, and older folders were 0755
    return directory


def report_path(settings: Settings, run_id: str) -> Path:
    return settings.reports_path / run_key(run_id) / "report.html"


def report_file(run_id: str) -> str:
    """Where a run's report is on disk."""
    return str(report_path(process_settings(), run_id))


def report_url(dag_id: str, run_id: str) -> str:
    """The run's page as served by the "Stock sync" plugin of this Airflow (login required): its
    report, or an HTML page saying why it has none (a run refused at its first task)."""
    return f"{base_url()}/stocksync/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
