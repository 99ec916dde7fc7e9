"""What the layers below get from Airflow and from the pages, handed down once per process.

Only include/stocksync/airflow imports Airflow, and the core never imports ui/ (`.importlinter`).
So what the core needs of either is installed here, into the module that uses it, when this
package is first imported (every DAG file, task, the plugin and the command line import it):

- Airflow's settings the pages and alerts are shown with, the display time zone and the public
  base URL (config/display.py);
- the notifiers alerts leave through, Airflow's HttpNotifier and SmtpNotifier (ops/delivery.py);
- the writers of the run and plan reports the pipeline's teardown and dry runs write
  (ui/report.py, into sync/ports.py);
- the opener of a file drop's folder, Airflow's ObjectStoragePath (sync/ports.py).
"""

from __future__ import annotations

from typing import Any

from include.stocksync.airflow.notifiers import AirflowNotifiers
from include.stocksync.config import display
from include.stocksync.ops import delivery
from include.stocksync.sync import ports
from include.stocksync.ui import report


def airflow_setting(section: str, key: str) -> str | None:
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return None if value is None else str(value)


def object_storage_folder(location: str, conn_id: str | None) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(location, conn_id=conn_id)


def install() -> None:
    display.read_airflow_settings_with(airflow_setting)
    delivery.send_through(AirflowNotifiers())
    ports.write_reports_with(report)
    ports.open_folders_with(object_storage_folder)
