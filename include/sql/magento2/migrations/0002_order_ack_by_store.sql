-- The WMS's acknowledgements keyed by (store_id, increment_id): Magento's increment ids are unique
-- per store view (sales_order's unique key is (increment_id, store_id)), not across the store, so
-- two store views may each have an order "000000001". An order of a deleted store view
-- (`sales_order.store_id` NULL) is keyed under store 0.
CREATE TABLE IF NOT EXISTS {p}stocksync_order_ack_by_store (
  store_id smallint unsigned NOT NULL,
  increment_id varchar(32) NOT NULL,
  acknowledged_at datetime(6) NOT NULL,
  PRIMARY KEY (store_id, increment_id),
  KEY STOCKSYNC_ORDER_ACK_BY_STORE_INCREMENT_ID (increment_id)
) ENGINE=InnoDB;
-- The acknowledgements kept by increment id alone (stocksync_order_ack, no longer written) move to
-- the orders that bear that increment id and existed when it was acknowledged: an order of another
-- store view created later was never sent under it, and is sent now.
INSERT IGNORE INTO {p}stocksync_order_ack_by_store (store_id, increment_id, acknowledged_at)
SELECT COALESCE(o.store_id, 0), o.increment_id, ack.acknowledged_at
FROM {p}stocksync_order_ack AS ack
JOIN {p}sales_order AS o ON o.increment_id = ack.increment_id AND o.created_at <= ack.acknowledged_at;
