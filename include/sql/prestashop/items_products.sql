-- The SKUs of products without combinations (items.sql): the product's non-empty reference, on its
-- row id_product_attribute = 0, when the product is the first item using it (earlier_items.sql
-- finds none before it). The reference of a product with combinations is no SKU (its row holds
-- their sum). Read in place, as items_combinations.sql. The product_filter placeholder is empty
-- (every SKU) or restricts the products read.
SELECT prod.reference AS sku, prod.id_product, 0 AS id_product_attribute, prod.active AS enabled
FROM {p}product AS prod
LEFT JOIN {p}product_attribute AS own_pa ON own_pa.id_product = prod.id_product
{earlier_items}
WHERE prod.reference <> '' {product_filter}
  AND own_pa.id_product_attribute IS NULL
  AND earlier_pa.id_product_attribute IS NULL AND earlier_prod.id_product IS NULL
