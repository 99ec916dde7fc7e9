-- The planned rows' quantity (the master figure), updated where they stand; on a shop's own rows
-- physical_quantity follows (quantity + reserved_quantity, as PrestaShop keeps it); shared group
-- rows keep theirs. (An INSERT ... ON DUPLICATE KEY UPDATE would first insert each row under a new
-- id_stock_available into the table and its four single-column indexes, hit the unique
-- product_sqlstock key, undo all that and then update.)
UPDATE stocksync_plan AS p
STRAIGHT_JOIN {p}stock_available AS sa ON sa.id_product = p.id_product
  AND sa.id_product_attribute = p.id_product_attribute
  AND sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s
SET sa.physical_quantity = IF(sa.id_shop = 0, sa.physical_quantity, p.new_qty + sa.reserved_quantity),
    sa.quantity = p.new_qty
WHERE p.write_it
