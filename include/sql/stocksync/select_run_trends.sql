-- The last nights of one sync DAG for the trend charts of the "Stock sync" page, newest first, from
-- `since` on; a night is the date a run started in time zone `tz` (the zone the page shows). One row
-- per night, built from what that night applied: the SKUs changed and units moved of every run that
-- applied that night, added up (a re-run that changed nothing adds nothing; it never hides what the
-- scheduled run changed), `applied_runs` to mark a night with re-runs; the duration of its first
-- applied run (else its latest run); the longest checkout closure and the failed checks of all the
-- night's runs; how many ran and how many failed. Figures come from each run's own audit rows
-- (stocksync.sku_audit: SKUs whose stock moved, units up plus down), NULL for a night that applied
-- nothing.
WITH runs AS (
    SELECT (r.started_at AT TIME ZONE %(tz)s)::date AS night,
           r.run_id, r.status, r.started_at,
           m.skus_changed, m.units_up + m.units_down AS units_moved,
           r.freeze_seconds,
           extract(epoch FROM coalesce(r.closed_at, r.finished_at) - r.started_at)::float8 AS duration_seconds,
           (SELECT count(*) FROM stocksync.dq_results d
             WHERE d.run_id = r.run_id AND NOT d.success AND d.policy <> 'overridden') AS failed_checks
      FROM stocksync.sync_runs r
      LEFT JOIN LATERAL ({movement}) m ON r.status = 'applied'
     WHERE r.dag_id = %(dag_id)s
       AND r.started_at >= %(since)s
)
SELECT night,
       (array_agg(run_id ORDER BY (status = 'applied') DESC, started_at))[1] AS run_id,
       (array_agg(status ORDER BY (status = 'applied') DESC, started_at DESC))[1] AS status,
       min(started_at) AS started_at,
       sum(skus_changed) FILTER (WHERE status = 'applied') AS skus_changed,
       sum(units_moved) FILTER (WHERE status = 'applied') AS units_moved,
       (array_agg(duration_seconds ORDER BY (status = 'applied') DESC,
                  CASE WHEN status = 'applied' THEN started_at END ASC, started_at DESC))[1] AS duration_seconds,
       max(freeze_seconds) AS freeze_seconds,
       sum(failed_checks) AS failed_checks,
       count(*) AS runs,
       count(*) FILTER (WHERE status = 'applied') AS applied_runs,
       array_agg(skus_changed ORDER BY started_at) FILTER (WHERE status = 'applied') AS applied_changes,
       count(*) FILTER (WHERE status IN ('failed', 'abandoned')) AS failed_runs
  FROM runs
 GROUP BY night
 ORDER BY night DESC
