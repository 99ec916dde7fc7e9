-- Orders of the scope's shops the WMS acknowledged that are now in a cancelled state: their WMS
-- allocation is released.
SELECT o.id_order, o.date_add
FROM {p}orders AS o
JOIN {p}stocksync_order_ack AS ack ON ack.id_order = o.id_order
WHERE o.id_shop IN %(shops)s AND o.current_state IN %(statuses)s
ORDER BY o.id_order
