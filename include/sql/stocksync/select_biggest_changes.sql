SELECT sku, old_qty, wms_available, adjustment, new_qty, new_qty - old_qty AS delta, outcome
  FROM stocksync.sku_audit
 WHERE run_id = %(run_id)s AND outcome IN ('changed', 'clamped') AND new_qty IS DISTINCT FROM old_qty
 ORDER BY abs(new_qty - old_qty) DESC, sku
 LIMIT %(limit)s
