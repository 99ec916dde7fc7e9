-- Of the given orders, those the store has and that have no acknowledgement yet (the key is id_order).
SELECT o.id_order, o.id_order
FROM {p}orders AS o
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.id_order = o.id_order
WHERE o.id_order IN %(order_ids)s AND ack.id_order IS NULL
