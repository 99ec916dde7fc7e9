-- The most recent sync runs for the Airflow "Stock sync" page (plugins/stocksync_plugin.py).
SELECT run_id, dag_id, status, started_at, finished_at, freeze_mode, freeze_seconds,
       changed, clamped, stale, duplicate, dq_success, triggered_by, override_reason, error
FROM stocksync.sync_runs
ORDER BY started_at DESC, run_id
LIMIT %(limit)s
