-- A run's figures for the compare view: its record, what it applied (its `movement`, composed from
-- select_run_movement: SKUs whose stock moved, units up and down), the SKUs it took from >0 to 0
-- (its own audit rows) and its duration in seconds.
SELECT r.run_id, r.dag_id, r.status, r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::double precision AS duration_seconds,
       r.extracted, r.valid, r.changed, r.unchanged, r.stale, r.clamped, r.unknown, r.quarantined,
       r.freeze_seconds, r.guardrails, r.triggered_by,
       m.skus_changed, m.units_up, m.units_down, z.zeroed
  FROM stocksync.sync_runs r
 CROSS JOIN LATERAL ({movement}) m
 CROSS JOIN LATERAL (SELECT count(*) AS zeroed
                       FROM stocksync.sku_audit a
                      WHERE a.run_id = r.run_id AND a.outcome IN ('changed', 'clamped')
                        AND a.old_qty > 0 AND a.new_qty = 0) z
 WHERE r.run_id = %(run_id)s
