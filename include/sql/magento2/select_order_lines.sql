-- The lines of the orders to send, one per (order, SKU): the items that carry stock, i.e. those
-- without child items (a simple product, or the simple child of a configurable or bundle line; the
-- configurable parent line repeats its child's SKU and is left out, so nothing is counted twice).
-- Units: ordered less cancelled less refunded, whole units; a configurable's child takes them from
-- its parent line, where Magento records them.
SELECT i.order_id, i.sku,
       SUM(GREATEST(0, FLOOR(IF(parent.product_type = 'configurable',
                                COALESCE(parent.qty_ordered, 0) - COALESCE(parent.qty_canceled, 0)
                                - COALESCE(parent.qty_refunded, 0),
                                COALESCE(i.qty_ordered, 0) - COALESCE(i.qty_canceled, 0)
                                - COALESCE(i.qty_refunded, 0))))) AS units
FROM {p}sales_order_item AS i
LEFT JOIN {p}sales_order_item AS parent ON parent.item_id = i.parent_item_id
WHERE i.order_id IN %(order_ids)s
  AND NOT EXISTS (SELECT 1 FROM {p}sales_order_item AS child
                  WHERE child.order_id = i.order_id AND child.parent_item_id = i.item_id)
GROUP BY i.order_id, i.sku
HAVING units > 0
ORDER BY i.order_id, i.sku
