-- The result of one delivery attempt of one alert.
UPDATE stocksync.alerts
   SET attempts = attempts + 1,
       last_attempt_at = clock_timestamp(),
       delivered = %(delivered)s,
       delivered_at = CASE WHEN %(delivered)s THEN clock_timestamp() END,
       delivery_error = %(delivery_error)s
 WHERE alert_id = %(alert_id)s
