-- The plan as ops read it: SKU, current, WMS available, adjustment, new, delta, outcome.
SELECT sku, old_qty AS current_qty, wms_available, adjustment, new_qty,
       coalesce(new_qty, 0) - coalesce(old_qty, 0) AS delta, outcome
  FROM {plan}
 ORDER BY abs(coalesce(new_qty, 0) - coalesce(old_qty, 0)) DESC, sku
