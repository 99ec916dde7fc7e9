-- The WMS's receipt time of an order (an order already acknowledged keeps its first).
INSERT IGNORE INTO {p}stocksync_order_ack (id_order, acknowledged_at) VALUES (%s, %s)
