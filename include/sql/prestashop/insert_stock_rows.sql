-- A planned item without a stock row in the scope gets one (a row created meanwhile is updated as
-- update_stock_rows.sql does).
INSERT INTO {p}stock_available (id_product, id_product_attribute, id_shop, id_shop_group, quantity,
                                physical_quantity, reserved_quantity, depends_on_stock, out_of_stock, location)
SELECT p.id_product, p.id_product_attribute, %(row_shop)s, %(row_group)s, p.new_qty, p.new_qty, 0, 0, 2, ''
FROM stocksync_plan AS p WHERE p.write_it AND NOT p.has_row
ON DUPLICATE KEY UPDATE
  physical_quantity = IF({p}stock_available.id_shop = 0, {p}stock_available.physical_quantity,
                         VALUES(quantity) + {p}stock_available.reserved_quantity),
  quantity = VALUES(quantity)
