-- Drift over the last %(nights)s nights, one row per night (the latest nightly run of the night),
-- newest first: for the Stock sync page (plugins/stocksync_plugin.py) and ops.
SELECT DISTINCT ON (h.night)
       h.night, h.run_id, h.skus_checked, h.skus_off, h.units_over, h.units_under, h.trend_skus_off, h.alert,
       h.alert_reason
  FROM stocksync.drift_history h
 WHERE h.dag_id = %(dag_id)s
   AND h.night > (clock_timestamp() AT TIME ZONE 'UTC')::date - %(nights)s::int
 ORDER BY h.night DESC, h.recorded_at DESC
