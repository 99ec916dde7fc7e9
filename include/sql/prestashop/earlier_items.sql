-- Joined by items_combinations.sql and items_products.sql to their outer item (its reference,
-- id_product and id_product_attribute filled in): an item before it using the same reference. Items
-- are the combinations of existing products and the products without combinations (their
-- id_product_attribute is 0), in (id_product, id_product_attribute) order. The outer item is the
-- first using its reference when neither join finds a row (`earlier_pa` and `earlier_prod` NULL):
-- outer-join anti-joins, index lookups by reference (product_attribute.reference,
-- product.reference_idx) that stop at the first row found; nothing grouped, no temporary table.
-- They look at the whole catalog whatever the outer item's filter, so a filtered read names the
-- same item as a full one.
LEFT JOIN {p}product_attribute AS earlier_pa ON earlier_pa.reference = {reference}
  AND earlier_pa.id_product_attribute <> {id_product_attribute}
  AND (earlier_pa.id_product < {id_product}
       OR (earlier_pa.id_product = {id_product} AND earlier_pa.id_product_attribute < {id_product_attribute}))
  AND EXISTS (SELECT 1 FROM {p}product AS earlier_pa_prod WHERE earlier_pa_prod.id_product = earlier_pa.id_product)
-- a product without combinations, (id, 0), comes before the outer item when its id is lower: with
-- the same id it is the outer item itself, or the product of the outer combination (which has one)
LEFT JOIN {p}product AS earlier_prod ON earlier_prod.reference = {reference}
  AND earlier_prod.id_product < {id_product}
  AND NOT EXISTS (SELECT 1 FROM {p}product_attribute AS earlier_combo
                  WHERE earlier_combo.id_product = earlier_prod.id_product)
