-- The run id of the last applied run of the same DAG that started before the run %(run_id)s.
SELECT p.run_id
  FROM stocksync.sync_runs r
  JOIN stocksync.sync_runs p ON p.dag_id = r.dag_id AND p.status = 'applied' AND p.started_at < r.started_at
 WHERE r.run_id = %(run_id)s
 ORDER BY p.started_at DESC
 LIMIT 1
