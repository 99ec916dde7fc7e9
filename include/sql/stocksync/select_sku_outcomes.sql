-- The domain rules for one SKU (docs/architecture.md), shared by the plan and the apply:
--   new_qty = max(0, wms_available - unsent_qty - cart_qty)
--   outcome: unknown (not in the shop's catalog), stale (WMS seq older than the last applied one),
--            clamped (the formula went below 0), unchanged, changed.
-- A catalog product without a stock row yet (newly listed) counts as 0 with sequence -1, so the
-- apply creates its row (shop/update_stock.sql) instead of calling it unknown.
-- Placeholders: counts (sku, wms_available, wms_seq), current_stock (the shop's stock),
-- catalog (the shop's products), demand (in-window demand).
SELECT c.sku,
       CASE WHEN cat.sku IS NOT NULL THEN coalesce(cur.qty, 0) END AS old_qty,
       CASE WHEN cat.sku IS NOT NULL THEN coalesce(cur.wms_seq, -1) END AS old_seq,
       c.wms_available,
       c.wms_seq,
       coalesce(d.unsent_qty, 0) + coalesce(d.cart_qty, 0) AS adjustment,
       CASE WHEN cat.sku IS NULL THEN NULL
            WHEN c.wms_seq < coalesce(cur.wms_seq, -1) THEN cur.qty
            ELSE greatest(0, c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0))::integer
       END AS new_qty,
       CASE WHEN cat.sku IS NULL THEN 'unknown'
            WHEN c.wms_seq < coalesce(cur.wms_seq, -1) THEN 'stale'
            WHEN c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0) < 0 THEN 'clamped'
            WHEN c.wms_available - coalesce(d.unsent_qty, 0) - coalesce(d.cart_qty, 0) = coalesce(cur.qty, 0)
                 THEN 'unchanged'
            ELSE 'changed'
       END AS outcome
  FROM {counts} c
  LEFT JOIN ({catalog}) cat ON cat.sku = c.sku
  LEFT JOIN ({current_stock}) cur ON cur.sku = c.sku
  LEFT JOIN {demand} d ON d.sku = c.sku
