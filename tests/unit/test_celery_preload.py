"""The Celery workers' configuration (include/stocksync/airflow/celery_config.py): Airflow's own,
plus Great Expectations imported, quietly, by Celery's own loader when a worker starts (before it
forks its pool), so a validate task inside the checkout freeze never imports it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from include.stocksync.config.settings import PROJECT_ROOT

# In a fresh interpreter: the Celery app Airflow's worker builds from `[celery] celery_config_options`,
# then what Celery's worker does at start (`loader.import_default_modules()`, the `imports` setting).
WORKER_START = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)  # a task log's level: INFO lines would show
from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery import Celery
from include.stocksync.airflow.celery_config import CELERY_CONFIG
before = "great_expectations" in sys.modules
app = Celery("airflow.providers.celery.executors.celery_executor", config_source=CELERY_CONFIG)
app.loader.import_default_modules()
print(json.dumps({
    "before": before,
    "after": "great_expectations" in sys.modules,
    "docs_log_level": logging.getLogger("great_expectations._docs_decorators").level,
    "airflow_settings_kept": all(app.conf[k] == v for k, v in DEFAULT_CELERY_CONFIG.items() if k != "imports"),
    "broker": app.conf.broker_url,
}))
"""


@pytest.mark.slow  # a fresh interpreter importing Airflow, Celery and Great Expectations: ~7 s
def test_a_worker_start_imports_great_expectations_quietly_and_keeps_airflows_settings() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT),
           "AIRFLOW__CELERY__BROKER_URL": "redis://:secret@127.0.0.1:1/0", "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run([sys.executable, "-c", WORKER_START], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] is False and seen["after"] is True
    assert seen["docs_log_level"] == 30  # WARNING: none of its ~150 INFO lines in a task's log
    assert seen["airflow_settings_kept"] is True
    assert seen["broker"] == "redis://:secret@127.0.0.1:1/0"  # [celery] broker_url, as Airflow builds it
    # and Great Expectations' API-docs registry said nothing while it was imported
    assert "Skipping registering function" not in done.stdout + done.stderr
