-- One stock row of the scope, locked as order validation's update locks it (the availability
-- service's live write-back takes the SKU's row, then its product's row; the apply locks the whole
-- scope, lock_stock.sql).
SELECT quantity FROM {p}stock_available
WHERE id_product = %(id_product)s AND id_product_attribute = %(id_product_attribute)s
  AND id_shop = %(row_shop)s AND id_shop_group = %(row_group)s
FOR UPDATE
