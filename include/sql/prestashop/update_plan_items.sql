-- Each planned SKU's product and combination (items.sql restricted to the planned SKUs).
UPDATE stocksync_plan AS p
JOIN ({items}) AS items ON items.sku = p.sku
SET p.id_product = items.id_product,
    p.id_product_attribute = items.id_product_attribute
