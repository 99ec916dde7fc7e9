-- A non-default stock's index rows of the SKUs written, recomputed as MSI's indexer does: the sum
-- of the stock's source items that are in stock (`status = 1`) at enabled sources; salable when
-- that sum is above the effective min qty or the product accepts backorders, and at least one such
-- item is in stock. `{index}` is the stock's index table (inventory_stock_<stock id>).
INSERT INTO {index} (sku, quantity, is_salable)
SELECT agg.sku, agg.quantity,
       agg.in_stock AND (agg.backorders <> 0 OR agg.quantity > IF(agg.backorders <> 0, LEAST(agg.min_qty, 0),
                                                                      GREATEST(agg.min_qty, 0)))
FROM (
  SELECT p.sku,
         SUM(IF(src.enabled = 1 AND si.status = 1, si.quantity, 0)) AS quantity,
         MAX(src.enabled = 1 AND si.status = 1) AS in_stock,
         MAX(IF(COALESCE(csi.use_config_backorders, 1) = 1, %(config_backorders)s, csi.backorders)) AS backorders,
         MAX(IF(COALESCE(csi.use_config_min_qty, 1) = 1, %(config_min_qty)s, csi.min_qty)) AS min_qty
  FROM stocksync_plan AS p
  JOIN {p}inventory_source_item AS si ON si.sku = p.sku
  JOIN {p}inventory_source_stock_link AS l ON l.source_code = si.source_code AND l.stock_id = %(stock_id)s
  JOIN {p}inventory_source AS src ON src.source_code = si.source_code
  LEFT JOIN {p}cataloginventory_stock_item AS csi ON csi.product_id = p.product_id AND csi.stock_id = 1
  WHERE p.write_it
  GROUP BY p.sku
) AS agg
ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), is_salable = VALUES(is_salable)
