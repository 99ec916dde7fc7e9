SELECT run_id, dag_id, night, skus_checked, skus_off, units_over, units_under, trend_skus_off, alert, alert_reason
  FROM stocksync.drift_history
 WHERE run_id = %(run_id)s
