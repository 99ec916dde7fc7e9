-- The failures recorded since %(since)s, newest first, at most %(limit)s: one row per occurrence
-- (an alert is recorded once per channel it goes to; the channels' copies are one occurrence).
SELECT occurrence.*
  FROM (SELECT DISTINCT ON (run_id, dag_id, coalesce(task_id, ''), coalesce(try_number, 0), kind,
                            coalesce(subject, ''))
               run_id, dag_id, task_id, try_number, kind, subject, error, sent_at
          FROM stocksync.alerts
         WHERE sent_at >= %(since)s
         ORDER BY run_id, dag_id, coalesce(task_id, ''), coalesce(try_number, 0), kind, coalesce(subject, ''),
                  sent_at) AS occurrence
 ORDER BY occurrence.sent_at DESC
 LIMIT %(limit)s
