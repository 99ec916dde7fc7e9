-- For each planned SKU: skip it when the stored WMS sequence is newer or the product is unknown;
-- otherwise the source quantity to write (the sellable figure plus the units Magento will subtract
-- again for orders it already holds: read under the lock into stocksync_reserved), the status
-- (1 when above 0 or the product accepts backorders) and whether anything moves.
UPDATE stocksync_plan AS p
LEFT JOIN {p}catalog_product_entity AS e ON e.sku = p.sku
LEFT JOIN {p}cataloginventory_stock_item AS csi ON csi.product_id = e.entity_id AND csi.stock_id = 1
LEFT JOIN stocksync_reserved AS r ON r.sku = p.sku
LEFT JOIN {p}inventory_source_item AS si ON si.source_code = %(source_code)s AND si.sku = p.sku
LEFT JOIN {p}stocksync_sku_state AS st ON st.source_code = %(source_code)s AND st.sku = p.sku
SET p.product_id = e.entity_id,
    p.target_qty = p.new_qty + COALESCE(r.open_units, 0),
    p.target_status = IF(p.new_qty + COALESCE(r.open_units, 0) > 0
                         OR IF(COALESCE(csi.use_config_backorders, 1) = 1, %(config_backorders)s, csi.backorders) <> 0,
                         1, 0),
    p.write_it = e.entity_id IS NOT NULL AND p.wms_seq >= COALESCE(st.wms_seq, -1)
                 AND (si.sku IS NULL OR st.sku IS NULL OR st.wms_seq <> p.wms_seq
                      OR si.quantity <> p.new_qty + COALESCE(r.open_units, 0)
                      OR si.status <> IF(p.new_qty + COALESCE(r.open_units, 0) > 0
                         OR IF(COALESCE(csi.use_config_backorders, 1) = 1, %(config_backorders)s, csi.backorders) <> 0,
                         1, 0))
