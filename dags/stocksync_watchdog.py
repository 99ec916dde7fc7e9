"""
# stocksync_watchdog

Airflow DAG that keeps runs, freezes and alerts in bounds when things fail, every few minutes
(`operations.watchdog_schedule`):

1. **reap_dead_runs**: a sync run whose record has not had a heartbeat for longer than the bound
   (a killed worker, a lost host) is closed as `abandoned` and its checkout freeze released; a
   freeze left by a run that is already closed is released too. A manual maintenance freeze (not
   set by a sync run) is never touched. Each one is alerted.
2. **check_freezes**: any freeze, a manual one too, that has kept checkout closed for longer than
   `operations.freeze_alert_after_seconds` is alerted once.
3. **retry_alerts**: alerts that could not be delivered (webhook down or hanging, SMTP down) are
   tried again until delivered or `operations.alert_retry_max_attempts` is reached.

See the README, "Operations under faults".
"""

from include.stocksync.airflow.watchdog_dag import build_watchdog_dag

build_watchdog_dag()
