-- The WMS's receipt time of one order (by entity id, then its receipt time), kept under the order's
-- store view and increment id; an order already acknowledged keeps its first.
INSERT IGNORE INTO {p}stocksync_order_ack_by_store (store_id, increment_id, acknowledged_at)
SELECT COALESCE(o.store_id, 0), o.increment_id, received.acknowledged_at
FROM (SELECT %s AS entity_id, %s AS acknowledged_at) AS received
JOIN {p}sales_order AS o ON o.entity_id = received.entity_id
WHERE o.increment_id IS NOT NULL
