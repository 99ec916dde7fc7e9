-- Undelivered alerts to send now, locked so two senders (a teardown and the watchdog) never send
-- one twice: those a run queued or is about (`run_id`), or, for the watchdog (`run_id` NULL), any
-- whose last try (or recording) is older than `retry_after_seconds`, up to `max_attempts` tries.
SELECT alert_id, run_id, dag_id, kind, channel, target, payload, attempts
  FROM stocksync.alerts
 WHERE NOT delivered AND payload IS NOT NULL AND attempts < %(max_attempts)s
   AND NOT (alert_id = ANY(%(skip)s::bigint[]))   -- tried already in this pass
   AND (CASE WHEN %(run_id)s::text IS NULL
             THEN coalesce(last_attempt_at, sent_at) < clock_timestamp() - make_interval(secs => %(retry_after_seconds)s)
             ELSE run_id = %(run_id)s::text OR queued_by = %(run_id)s::text END)
 ORDER BY alert_id
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
