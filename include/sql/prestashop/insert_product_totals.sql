-- A product of stocksync_totals without its own row in the scope gets one (one created meanwhile is
-- updated as update_product_totals.sql does).
INSERT INTO {p}stock_available (id_product, id_product_attribute, id_shop, id_shop_group, quantity,
                                physical_quantity, reserved_quantity, depends_on_stock, out_of_stock, location)
SELECT t.id_product, 0, %(row_shop)s, %(row_group)s, t.quantity, t.physical, 0, 0, 2, ''
FROM stocksync_totals AS t WHERE NOT t.has_row
ON DUPLICATE KEY UPDATE quantity = VALUES(quantity),
  physical_quantity = IF({p}stock_available.id_shop = 0, {p}stock_available.physical_quantity,
                         VALUES(physical_quantity))
