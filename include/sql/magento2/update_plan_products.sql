-- Each planned SKU's product (before the write's lock: a product's id does not move with orders or
-- shipments; a SKU with no product is never written).
UPDATE stocksync_plan AS p
JOIN {p}catalog_product_entity AS e ON e.sku = p.sku
SET p.product_id = e.entity_id
