-- Of the given orders (entity ids), those the store has and that have no acknowledgement yet, with
-- the increment id the acknowledgement is kept under.
SELECT o.entity_id, o.increment_id
FROM {p}sales_order AS o
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.increment_id = o.increment_id
WHERE o.entity_id IN %(order_ids)s AND o.increment_id IS NOT NULL AND ack.increment_id IS NULL
