-- What the WMS's SKUs are in PrestaShop: a combination's reference, or the reference of a product
-- without combinations (its row is id_product_attribute = 0). Empty references are no SKU; a
-- reference used twice names the first item (lowest ids). Composed into the statements below;
-- the two filters (pa_filter, product_filter) are empty (every SKU) or restrict the SKUs resolved.
SELECT ref.sku, MIN(ref.id_product) AS id_product,
       MIN(ref.id_product_attribute) AS id_product_attribute, MAX(ref.active) AS enabled
FROM (
  SELECT pa.reference AS sku, pa.id_product, pa.id_product_attribute, prod.active
  FROM {p}product_attribute AS pa JOIN {p}product AS prod ON prod.id_product = pa.id_product
  WHERE pa.reference <> '' {pa_filter}
  UNION ALL
  SELECT prod.reference, prod.id_product, 0, prod.active
  FROM {p}product AS prod
  WHERE prod.reference <> '' {product_filter}
    AND NOT EXISTS (SELECT 1 FROM {p}product_attribute AS pa WHERE pa.id_product = prod.id_product)
) AS ref
GROUP BY ref.sku
