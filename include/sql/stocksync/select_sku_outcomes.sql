-- The domain rules for one SKU (shared/DESIGN.md §3.1-3.2), shared by the plan and the apply:
--   new_qty = max(0, wms_available - unsent_qty - cart_qty)
--   outcome: unknown (not in the shop), stale (WMS seq older than the last applied one),
--            clamped (the formula went below 0), unchanged, changed.
-- Placeholders: counts (sku, wms_available, wms_seq), current_stock (the shop's stock), demand (in-window demand).
SELECT c.sku,
       cur.qty AS old_qty,
       cur.wms_seq AS old_seq,
       c.wms_available,
       c.wms_seq,
       coalesce(d.unsent_qty, 0) + coalesce(d.cart_qty, 0) AS adjustment,
       CASE WHEN cur.sku IS NULL THEN NULL
            WHEN c.wms_seq < cur.wms_seq THEN cur.qty
            ELSE greatest(0, c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0))::integer
       END AS new_qty,
       CASE WHEN cur.sku IS NULL THEN 'unknown'
            WHEN c.wms_seq < cur.wms_seq THEN 'stale'
            WHEN c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0) < 0 THEN 'clamped'
            WHEN c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0) = cur.qty THEN 'unchanged'
            ELSE 'changed'
       END AS outcome
  FROM {counts} c
  LEFT JOIN ({current_stock}) cur ON cur.sku = c.sku
  LEFT JOIN {demand} d ON d.sku = c.sku
