-- The biggest changes a plan would make, biggest first (the run report of a run that did not apply).
SELECT sku, old_qty, wms_available, adjustment, new_qty, coalesce(new_qty, 0) - coalesce(old_qty, 0) AS delta, outcome
  FROM {plan}
 WHERE outcome IN ('changed', 'clamped') AND new_qty IS DISTINCT FROM old_qty
 ORDER BY abs(coalesce(new_qty, 0) - coalesce(old_qty, 0)) DESC, sku
 LIMIT %(limit)s
