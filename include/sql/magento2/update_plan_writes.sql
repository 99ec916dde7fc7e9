-- For each planned SKU: skip it when the stored WMS sequence is newer or the product is unknown;
-- otherwise the status (1 when the quantity is above 0 or the product accepts backorders) and
-- whether anything moves; and whether its source item and its legacy stock item exist (the write
-- updates those in place and inserts only the missing ones).
UPDATE stocksync_plan AS p
LEFT JOIN {p}cataloginventory_stock_item AS csi ON csi.product_id = p.product_id AND csi.stock_id = 1
LEFT JOIN {p}inventory_source_item AS si ON si.source_code = %(source_code)s AND si.sku = p.sku
LEFT JOIN {p}stocksync_sku_state AS st ON st.source_code = %(source_code)s AND st.sku = p.sku
SET p.has_item = si.sku IS NOT NULL,
    p.has_legacy_item = csi.product_id IS NOT NULL,
    p.target_status = IF(p.target_qty > 0
                         OR IF(COALESCE(csi.use_config_backorders, 1) = 1, %(config_backorders)s, csi.backorders) <> 0,
                         1, 0),
    p.write_it = p.product_id IS NOT NULL AND p.wms_seq >= COALESCE(st.wms_seq, -1)
                 AND (si.sku IS NULL OR st.sku IS NULL OR st.wms_seq <> p.wms_seq
                      OR si.quantity <> p.target_qty
                      OR si.status <> IF(p.target_qty > 0
                         OR IF(COALESCE(csi.use_config_backorders, 1) = 1, %(config_backorders)s, csi.backorders) <> 0,
                         1, 0))
