-- Orders the WMS acknowledged that the store has since cancelled (`sales_order.status` in the
-- cancelled statuses): their WMS allocation is released.
SELECT o.entity_id, o.created_at
FROM {p}sales_order AS o
JOIN {p}stocksync_order_ack AS ack ON ack.increment_id = o.increment_id
WHERE o.status IN %(statuses)s
ORDER BY o.entity_id
