-- Runs whose teardown has not closed them and that have been silent longer than the bound (the
-- watchdog declares them dead). Locked, so two watchdogs (or a watchdog and a setup) never both
-- handle one run.
SELECT run_id, dag_id, status,
       coalesce(heartbeat_at, started_at) AS last_heartbeat,
       extract(epoch FROM clock_timestamp() - coalesce(heartbeat_at, started_at))::float8 AS silent_seconds
  FROM stocksync.sync_runs
 WHERE closed_at IS NULL
   AND dag_id = ANY(%(dag_ids)s::text[])
   AND coalesce(heartbeat_at, started_at) < clock_timestamp() - make_interval(secs => %(bound_seconds)s)
 ORDER BY started_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED
