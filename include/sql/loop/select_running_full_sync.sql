-- A full sync (nightly or push) that is going right now and will write: an intraday run does not
-- read or write meanwhile. A record left `running` longer than %(stale_seconds)s (a crashed
-- worker) does not block.
SELECT r.run_id, r.dag_id, r.started_at
  FROM stocksync.sync_runs r
 WHERE r.dag_id = ANY (%(full_sync_dag_ids)s)
   AND r.status = 'running'
   AND r.started_at > clock_timestamp() - make_interval(secs => %(stale_seconds)s)
   AND NOT coalesce((r.options ->> 'dry_run')::boolean, false)
 ORDER BY r.started_at
 LIMIT 1
