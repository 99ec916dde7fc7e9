-- Orders of the scope's shops the WMS has not acknowledged, in the sent states
-- (`orders.current_state`, mapped from stocksync's status names by the adapter's order_statuses),
-- oldest first.
SELECT o.id_order, o.date_add
FROM {p}orders AS o
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.id_order = o.id_order
WHERE ack.id_order IS NULL AND o.id_shop IN %(shops)s AND o.current_state IN %(statuses)s
ORDER BY o.id_order
