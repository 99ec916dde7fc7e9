-- What an applied run changed, from its audit rows: SKUs whose stock moved, units up and down,
-- SKUs that went from in stock to 0 (the run report's headline and figures).
SELECT count(*) FILTER (WHERE new_qty IS DISTINCT FROM old_qty) AS skus_changed,
       coalesce(sum(greatest(new_qty - coalesce(old_qty, 0), 0)), 0)::bigint AS units_up,
       coalesce(sum(greatest(coalesce(old_qty, 0) - new_qty, 0)), 0)::bigint AS units_down,
       count(*) FILTER (WHERE old_qty > 0 AND new_qty = 0) AS zeroed
  FROM stocksync.sku_audit
 WHERE run_id = %(run_id)s AND outcome IN ('changed', 'clamped')
