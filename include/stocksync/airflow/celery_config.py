"""The Celery configuration of stocksync's Airflow workers (`[celery] celery_config_options` =
`include.stocksync.airflow.celery_config.CELERY_CONFIG`, set by docker-compose.yaml and
devstack/celery_stack.py): Airflow's own (the provider's DEFAULT_CELERY_CONFIG, built from the
`[celery]` settings) plus the modules each worker imports once when it starts, before it forks its
pool (Celery's `imports`). Airflow preloads its own expensive modules the same way
(`celery_import_modules`); each task process is a fork and finds them loaded.

Preloaded: Great Expectations (include/stocksync/sync/gx_library.py). The validate task runs inside
the checkout freeze, and importing the library there held checkout for its import time on every
night. Only the third-party library is preloaded, none of stocksync's own code: a deployment that
updates the DAGs and `include/` without restarting its workers still runs the new code.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

PRELOADED_MODULES = ("include.stocksync.sync.gx_library",)

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*tuple(DEFAULT_CELERY_CONFIG.get("imports") or ()), *PRELOADED_MODULES),
}
