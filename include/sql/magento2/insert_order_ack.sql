-- The WMS's receipt time of an order, by increment id (an order already acknowledged keeps its first).
INSERT IGNORE INTO {p}stocksync_order_ack (increment_id, acknowledged_at) VALUES (%s, %s)
