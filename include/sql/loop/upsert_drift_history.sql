INSERT INTO stocksync.drift_history (run_id, dag_id, night, skus_checked, skus_off, units_over, units_under,
                                     trend_skus_off, alert, alert_reason)
VALUES (%(run_id)s, %(dag_id)s, %(night)s, %(skus_checked)s, %(skus_off)s, %(units_over)s, %(units_under)s,
        %(trend_skus_off)s, %(alert)s, %(alert_reason)s)
ON CONFLICT (run_id) DO UPDATE
   SET night = EXCLUDED.night, skus_checked = EXCLUDED.skus_checked, skus_off = EXCLUDED.skus_off,
       units_over = EXCLUDED.units_over, units_under = EXCLUDED.units_under,
       trend_skus_off = EXCLUDED.trend_skus_off, alert = EXCLUDED.alert, alert_reason = EXCLUDED.alert_reason,
       recorded_at = clock_timestamp()
