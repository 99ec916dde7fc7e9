-- The lines of the orders the order push is about to send, one row per (order, SKU).
SELECT l.order_id, l.sku, l.qty
  FROM {shop}.order_lines l
 WHERE l.order_id = ANY (%(order_ids)s)
 ORDER BY l.order_id, l.sku
