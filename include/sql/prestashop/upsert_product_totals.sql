-- A product with combinations: its own row (id_product_attribute = 0) holds the sum of its
-- combination rows, as PrestaShop keeps it. Only products whose combinations were written.
INSERT INTO {p}stock_available (id_product, id_product_attribute, id_shop, id_shop_group, quantity,
                                physical_quantity, reserved_quantity, depends_on_stock, out_of_stock, location)
SELECT sums.id_product, 0, %(row_shop)s, %(row_group)s, sums.quantity, sums.physical, 0, 0, 2, ''
FROM (
  SELECT sa.id_product, SUM(sa.quantity) AS quantity, SUM(sa.physical_quantity) AS physical
  FROM {p}stock_available AS sa
  WHERE sa.id_shop = %(row_shop)s AND sa.id_shop_group = %(row_group)s AND sa.id_product_attribute > 0
    AND sa.id_product IN (SELECT p.id_product FROM stocksync_plan AS p WHERE p.write_it AND p.id_product_attribute > 0)
  GROUP BY sa.id_product
) AS sums
ON DUPLICATE KEY UPDATE quantity = VALUES(quantity),
  physical_quantity = IF({p}stock_available.id_shop = 0, {p}stock_available.physical_quantity,
                         VALUES(physical_quantity))
