-- Every product SKU and whether it keeps stock of its own (simple and virtual products; a
-- configurable or bundle parent's salability comes from its children, which are the WMS's SKUs).
SELECT sku, MAX(type_id IN ('simple', 'virtual', 'downloadable')) AS enabled
FROM {p}catalog_product_entity
GROUP BY sku
