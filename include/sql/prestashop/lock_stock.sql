-- Lock the scope's stock rows of the planned SKUs' products (the combinations' rows and the product
-- row that holds their sum) against checkout: PrestaShop's order validation updates these rows. Only
-- the products written are locked, before their orders are read again (update_plan_demand.sql).
SELECT COUNT(*) FROM {p}stock_available
WHERE id_shop = %(row_shop)s AND id_shop_group = %(row_group)s
  AND id_product IN (SELECT p.id_product FROM stocksync_plan AS p WHERE p.id_product IS NOT NULL)
ORDER BY id_product, id_product_attribute
FOR UPDATE
