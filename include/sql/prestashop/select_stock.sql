-- The sellable quantity of each SKU in the scope's rows (never below 0) and its last WMS sequence;
-- `{sku_filter}` is empty or restricts to the given SKUs.
SELECT items.sku, GREATEST(0, sa.quantity) AS qty, COALESCE(st.wms_seq, 0) AS wms_seq
FROM ({items}) AS items
JOIN {p}stock_available AS sa ON sa.id_product = items.id_product
  AND sa.id_product_attribute = items.id_product_attribute
  AND sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s
LEFT JOIN {p}stocksync_sku_state AS st ON st.scope = %(scope)s AND st.sku = items.sku
WHERE 1 = 1 {sku_filter}
