-- Liveness of the runs that hold freezes (the setup's orphan check): a run is not alive when its
-- teardown closed it, when it was declared dead, or when it has been silent longer than the bound.
-- Only runs of the watched DAGs (the ones that beat and are closed by a teardown) are judged.
SELECT run_id, dag_id, status,
       closed_at IS NOT NULL AS closed,
       coalesce(heartbeat_at, started_at) AS last_heartbeat,
       extract(epoch FROM clock_timestamp() - coalesce(heartbeat_at, started_at))::float8 AS silent_seconds
  FROM stocksync.sync_runs
 WHERE run_id = ANY(%(run_ids)s::text[])
   AND dag_id = ANY(%(dag_ids)s::text[])
 ORDER BY started_at
