-- A product with combinations: its own row (id_product_attribute = 0) holds the sum of its
-- combination rows, as PrestaShop keeps it. Only products whose combinations were written, summed
-- into the temporary table stocksync_totals (update_product_totals.sql and insert_product_totals.sql
-- write them).
INSERT INTO stocksync_totals (id_product, quantity, physical)
SELECT sa.id_product, SUM(sa.quantity), SUM(sa.physical_quantity)
FROM {p}stock_available AS sa
WHERE sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s AND sa.id_product_attribute > 0
  AND sa.id_product IN (SELECT p.id_product FROM stocksync_plan AS p WHERE p.write_it AND p.id_product_attribute > 0)
GROUP BY sa.id_product
