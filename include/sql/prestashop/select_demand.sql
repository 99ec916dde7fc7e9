-- Per SKU: the units of the store's orders that still hold stock and that the WMS had not counted at
-- %(watermark)s: orders of the scope's shops whose current state is not a shipped state nor one of
-- %(not_reserving)s (error, cancelled), `product_quantity - product_quantity_refunded` per line (never
-- below 0: a refund recorded beyond the quantity holds nothing). A state without an order_state row
-- (removed by a module or by hand) is not known to be shipped: its order holds its units.
-- Computed from the orders, never taken from stock_available.reserved_quantity. The order_filter
-- placeholder is empty (every order line) or restricts the lines counted: to the bound `sku` (the
-- live write-back) or to orders up to the bound `upto_order` (an apply's baseline).
SELECT items.sku,
       SUM(GREATEST(0, CAST(od.product_quantity AS SIGNED) - CAST(od.product_quantity_refunded AS SIGNED))) AS units
FROM {p}orders AS o
LEFT JOIN {p}order_state AS os ON os.id_order_state = o.current_state
JOIN {p}order_detail AS od ON od.id_order = o.id_order
JOIN ({items}) AS items ON items.id_product = od.product_id
  AND items.id_product_attribute = COALESCE(od.product_attribute_id, 0)
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.id_order = o.id_order
WHERE %(include_orders)s
  AND o.id_shop IN %(shops)s
  AND COALESCE(os.shipped, 0) = 0
  AND o.current_state NOT IN %(not_reserving)s
  AND (ack.id_order IS NULL OR ack.acknowledged_at > %(watermark)s)
  {order_filter}
GROUP BY items.sku
HAVING units > 0
