-- The most recent sync runs for the Airflow "Stock sync" page (plugins/stocksync_plugin.py).
SELECT r.run_id, r.dag_id, r.status, r.started_at, r.finished_at, r.freeze_mode, r.freeze_seconds,
       r.changed, r.clamped, r.stale, r.duplicate, r.dq_success, r.triggered_by, r.override_reason, r.error,
       (SELECT count(*) FROM stocksync.alerts a WHERE a.run_id = r.run_id AND a.dag_id = r.dag_id) AS alerts
FROM stocksync.sync_runs r
ORDER BY r.started_at DESC, r.run_id
LIMIT %(limit)s
