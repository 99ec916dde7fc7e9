-- Orders the WMS has not acknowledged, in the sent statuses (`sales_order.status`, mapped from
-- stocksync's status names by the adapter's order_statuses) and, when the magento2 `store_ids`
-- option names some, of those store views only; oldest first. An order is acknowledged by its
-- store view and increment id (increment ids are unique per store view only).
SELECT o.entity_id, o.created_at
FROM {p}sales_order AS o
LEFT JOIN {p}stocksync_order_ack_by_store AS ack
  ON ack.store_id = COALESCE(o.store_id, 0) AND ack.increment_id = o.increment_id
WHERE ack.increment_id IS NULL AND o.increment_id IS NOT NULL AND o.status IN %(statuses)s
  AND (%(all_stores)s OR o.store_id IN %(store_ids)s)
ORDER BY o.entity_id
