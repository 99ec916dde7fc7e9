-- The SKUs of combinations (items.sql): a combination's non-empty reference, when the combination
-- is the first item using it (earlier_items.sql finds none before it). Read in place: a derived
-- table the optimizer merges into the statement it is part of. The pa_filter placeholder is empty
-- (every SKU) or restricts the combinations read.
SELECT pa.reference AS sku, pa.id_product, pa.id_product_attribute, prod.active AS enabled
FROM {p}product_attribute AS pa
JOIN {p}product AS prod ON prod.id_product = pa.id_product
{earlier_items}
WHERE pa.reference <> '' {pa_filter}
  AND earlier_pa.id_product_attribute IS NULL AND earlier_prod.id_product IS NULL
