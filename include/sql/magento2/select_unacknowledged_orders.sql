-- Orders the WMS has not acknowledged, in the sent statuses (`sales_order.status`, mapped from
-- stocksync's status names by the adapter's order_statuses), oldest first. An order is
-- acknowledged by its increment id (the name its reservations carry).
SELECT o.entity_id, o.created_at
FROM {p}sales_order AS o
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.increment_id = o.increment_id
WHERE ack.increment_id IS NULL AND o.increment_id IS NOT NULL AND o.status IN %(statuses)s
ORDER BY o.entity_id
