-- The alerts sent for one run of one DAG, oldest first (the run report).
SELECT sent_at, task_id, try_number, target, delivered, delivery_error, error
  FROM stocksync.alerts
 WHERE run_id = %(run_id)s AND dag_id = %(dag_id)s
 ORDER BY sent_at, alert_id
