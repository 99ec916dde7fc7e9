-- Of the given orders (entity ids), those the store has and that have no acknowledgement yet; the
-- entity id is the key insert_order_ack.sql finds the order's store view and increment id by.
SELECT o.entity_id, o.entity_id
FROM {p}sales_order AS o
LEFT JOIN {p}stocksync_order_ack_by_store AS ack
  ON ack.store_id = COALESCE(o.store_id, 0) AND ack.increment_id = o.increment_id
WHERE o.entity_id IN %(order_ids)s AND o.increment_id IS NOT NULL AND ack.increment_id IS NULL
