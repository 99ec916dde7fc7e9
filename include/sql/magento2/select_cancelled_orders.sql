-- Orders the WMS acknowledged that the store has since cancelled (`sales_order.status` in the
-- cancelled statuses), of the store views the order push reads (`store_ids`): their WMS allocation
-- is released.
SELECT o.entity_id, o.created_at
FROM {p}sales_order AS o
JOIN {p}stocksync_order_ack_by_store AS ack
  ON ack.store_id = COALESCE(o.store_id, 0) AND ack.increment_id = o.increment_id
WHERE o.status IN %(statuses)s AND (%(all_stores)s OR o.store_id IN %(store_ids)s)
ORDER BY o.entity_id
