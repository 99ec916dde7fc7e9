-- What the run `r` (the enclosing query's sync_runs row) applied, from its own audit rows: SKUs whose
-- stock moved, units up and units down. Composed into select_runs_page and select_run_trends as a
-- LATERAL subquery (their `movement` placeholder), one indexed read of the run's audit rows.
SELECT count(*) FILTER (WHERE a.new_qty IS DISTINCT FROM a.old_qty) AS skus_changed,
       coalesce(sum(greatest(a.new_qty - coalesce(a.old_qty, 0), 0)), 0)::bigint AS units_up,
       coalesce(sum(greatest(coalesce(a.old_qty, 0) - a.new_qty, 0)), 0)::bigint AS units_down
  FROM stocksync.sku_audit a
 WHERE a.run_id = r.run_id AND a.outcome IN ('changed', 'clamped')
