-- For each planned SKU (its ids resolved: update_plan_items.sql): skip it when unknown, when its
-- stored WMS sequence is newer, or when its row or its product's row depends on stock (quantities
-- PrestaShop derives from warehouse stock: never written; PrestaShop flags the product's row, and
-- a combination of a flagged product is never written either, so its product's sum stays as it is);
-- otherwise write it when the quantity or the sequence moves; and whether its stock row exists (the
-- write updates the rows in place and inserts only the missing ones).
UPDATE stocksync_plan AS p
LEFT JOIN {p}stock_available AS sa ON sa.id_product = p.id_product
  AND sa.id_product_attribute = p.id_product_attribute
  AND sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s
LEFT JOIN {p}stock_available AS product_sa ON product_sa.id_product = p.id_product
  AND product_sa.id_product_attribute = 0
  AND product_sa.id_shop = %(row_shop)s AND product_sa.id_shop_group = %(row_group)s
LEFT JOIN {p}stocksync_sku_state AS st ON st.scope = %(scope)s AND st.sku = p.sku
SET p.has_row = sa.id_stock_available IS NOT NULL,
    p.write_it = p.id_product IS NOT NULL AND p.wms_seq >= COALESCE(st.wms_seq, -1)
                 AND COALESCE(sa.depends_on_stock, 0) = 0 AND COALESCE(product_sa.depends_on_stock, 0) = 0
                 AND (sa.id_stock_available IS NULL OR st.sku IS NULL OR st.wms_seq <> p.wms_seq
                      OR sa.quantity <> p.new_qty)
