-- The lines of the orders to send, one per (order, SKU). The SKU: the combination's reference
-- (a line with a combination), else the product's reference, else the reference the line recorded
-- when the order was placed (the product since renamed or deleted). Units: ordered less refunded.
SELECT od.id_order,
       COALESCE(NULLIF(pa.reference, ''),
                IF(COALESCE(od.product_attribute_id, 0) = 0, NULLIF(prod.reference, ''), NULL),
                COALESCE(od.product_reference, '')) AS sku,
       SUM(CAST(od.product_quantity AS SIGNED) - CAST(od.product_quantity_refunded AS SIGNED)) AS units
FROM {p}order_detail AS od
LEFT JOIN {p}product_attribute AS pa ON pa.id_product_attribute = od.product_attribute_id
  AND od.product_attribute_id > 0
LEFT JOIN {p}product AS prod ON prod.id_product = od.product_id
WHERE od.id_order IN %(order_ids)s
GROUP BY od.id_order, sku
HAVING units > 0
ORDER BY od.id_order, sku
