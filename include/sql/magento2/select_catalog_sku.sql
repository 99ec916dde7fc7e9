-- One product SKU and whether it keeps stock of its own (as select_catalog).
SELECT sku, MAX(type_id IN ('simple', 'virtual', 'downloadable')) AS enabled
FROM {p}catalog_product_entity
WHERE sku = %(sku)s
GROUP BY sku
