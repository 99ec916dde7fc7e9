"""The timing of the crash tests (a Celery worker killed holding the stock lock, a crashed nightly
whose freeze the next run releases): every duration involved, scaled by one factor so the ratios
between them stay the shipped ones.

By default the tests run at `TEST_FACTOR` of the shipped timing: the same sequence of events
(detection, retry delay, heartbeat bound, holder wait) in well under half the time, and the bounds
they assert are computed from the scaled settings. `STOCKSYNC_FAULT_TIMING=shipped` runs them at
the shipped values, nothing shortened: `scripts/measure_worker_loss.sh` does that for the
runbook's table (docs/operations.md, "Measured (shipped settings)"). That the shipped values fit
together is checked without running anything by tests/unit/test_operations_bounds.py.
"""

from __future__ import annotations

import os

from include.stocksync.config.operations import check_worker_loss
from include.stocksync.config.settings import Settings, load_settings

# The fixed costs (a task's start on a worker, TASK_START_SECONDS = 15 s) do not scale: below about
# 0.4 the heartbeat bound no longer exceeds one beat + a lost worker's recovery (check_worker_loss).
TEST_FACTOR = 0.4
SHIPPED = load_settings(environ={})


def factor() -> float:
    """1.0 with STOCKSYNC_FAULT_TIMING=shipped, else TEST_FACTOR."""
    choice = os.environ.get("STOCKSYNC_FAULT_TIMING", "scaled")
    if choice not in ("scaled", "shipped"):
        raise ValueError(f"STOCKSYNC_FAULT_TIMING={choice!r}: use 'scaled' (the default) or 'shipped'")
    return 1.0 if choice == "shipped" else TEST_FACTOR


def _seconds(value: float, scale: float, *, whole: bool = False) -> str:
    scaled = value * scale
    return str(max(1, round(scaled))) if whole else f"{scaled:g}"


def stocksync_env(scale: float | None = None) -> dict[str, str]:
    """stocksync's own durations at `scale` x shipped: task retry delays, the run heartbeat and its
    bound, the wait for another run's freeze, and what Airflow's lost-task detection is declared as
    (operations.airflow_*; the Celery stack sets Airflow's side with `airflow_env`)."""
    scale = factor() if scale is None else scale
    ops = SHIPPED.operations
    return {
        "STOCKSYNC_RETRY_DELAY_SECONDS": _seconds(SHIPPED.retry_delay_seconds, scale),
        "STOCKSYNC_MAX_RETRY_DELAY_SECONDS": _seconds(SHIPPED.max_retry_delay_seconds, scale),
        "STOCKSYNC_OPERATIONS__HEARTBEAT_INTERVAL_SECONDS": _seconds(ops.heartbeat_interval_seconds, scale),
        "STOCKSYNC_OPERATIONS__HEARTBEAT_TIMEOUT_SECONDS": _seconds(ops.heartbeat_timeout_seconds, scale),
        "STOCKSYNC_OPERATIONS__HOLDER_WAIT_SECONDS": _seconds(ops.holder_wait_seconds, scale),
        "STOCKSYNC_OPERATIONS__AIRFLOW_TASK_HEARTBEAT_TIMEOUT_SECONDS":
            _seconds(ops.airflow_task_heartbeat_timeout_seconds, scale, whole=True),
        "STOCKSYNC_OPERATIONS__AIRFLOW_HEARTBEAT_CHECK_SECONDS":
            _seconds(ops.airflow_heartbeat_check_seconds, scale, whole=True),
    }


def airflow_env(airflow_timing: dict[str, str], scale: float | None = None) -> dict[str, str]:
    """Airflow's lost-task detection (the stack's AIRFLOW_TIMING) at `scale` x shipped; Airflow reads
    these settings as whole seconds."""
    scale = factor() if scale is None else scale
    return {name: _seconds(float(value), scale, whole=True) for name, value in airflow_timing.items()}


def scaled_settings(scale: float | None = None) -> Settings:
    """The settings the crash tests run with, checked to keep the shipped inequalities (so a scaled
    run proves what the shipped one would)."""
    settings = load_settings(environ=stocksync_env(scale))
    problems = check_worker_loss(settings)
    assert problems == [], f"the scaled timing breaks the shipped bounds: {problems}"
    return settings
