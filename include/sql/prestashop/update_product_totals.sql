-- The product rows of stocksync_totals (sum_product_totals.sql) that exist, updated where they
-- stand; shared group rows keep their physical_quantity.
UPDATE stocksync_totals AS t
STRAIGHT_JOIN {p}stock_available AS sa ON sa.id_product = t.id_product AND sa.id_product_attribute = 0
  AND sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s
SET sa.physical_quantity = IF(sa.id_shop = 0, sa.physical_quantity, t.physical),
    sa.quantity = t.quantity, t.has_row = 1
