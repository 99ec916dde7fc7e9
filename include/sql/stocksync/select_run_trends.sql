-- The last nights of one sync DAG for the trend charts of the "Stock sync" page, newest first, from
-- `since` on; a night is the date a run started in time zone `tz` (the zone the page shows). Per
-- night: the run that applied (else the latest run) for SKUs changed, units moved and duration;
-- the longest checkout closure and the failed checks of all the night's runs; how many failed.
-- Units moved are the drift the apply corrected (stocksync.drift_history: units over- plus
-- under-stated), NULL for a run that wrote nothing.
WITH runs AS (
    SELECT (r.started_at AT TIME ZONE %(tz)s)::date AS night,
           r.run_id, r.status, r.started_at,
           coalesce(r.changed, 0) + coalesce(r.clamped, 0) AS skus_changed,
           h.units_over + h.units_under AS units_moved,
           r.freeze_seconds,
           extract(epoch FROM coalesce(r.closed_at, r.finished_at) - r.started_at)::float8 AS duration_seconds,
           (SELECT count(*) FROM stocksync.dq_results d
             WHERE d.run_id = r.run_id AND NOT d.success AND d.policy <> 'overridden') AS failed_checks
      FROM stocksync.sync_runs r
      LEFT JOIN stocksync.drift_history h ON h.run_id = r.run_id
     WHERE r.dag_id = %(dag_id)s
       AND r.started_at >= %(since)s
)
SELECT DISTINCT ON (night)
       night, run_id, status, started_at, skus_changed, units_moved, duration_seconds,
       max(freeze_seconds) OVER (PARTITION BY night) AS freeze_seconds,
       sum(failed_checks) OVER (PARTITION BY night) AS failed_checks,
       count(*) OVER (PARTITION BY night) AS runs,
       count(*) FILTER (WHERE status IN ('failed', 'abandoned')) OVER (PARTITION BY night) AS failed_runs
  FROM runs
 ORDER BY night DESC, (status = 'applied') DESC, started_at DESC
