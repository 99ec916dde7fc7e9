-- stocksync's own tables in the Magento database (never a column added to a Magento table).
-- The WMS sequence last applied per SKU of the WMS's source, and the snapshot that wrote it.
CREATE TABLE IF NOT EXISTS {p}stocksync_sku_state (
  source_code varchar(255) NOT NULL,
  sku varchar(64) NOT NULL,
  wms_seq bigint NOT NULL,
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (source_code, sku)
) ENGINE=InnoDB;
-- When the WMS acknowledged (counted) an order, by the order's increment id: the key that also
-- names the order in a reservation's metadata (`object_increment_id`).
CREATE TABLE IF NOT EXISTS {p}stocksync_order_ack (
  increment_id varchar(32) NOT NULL,
  acknowledged_at datetime(6) NOT NULL,
  PRIMARY KEY (increment_id)
) ENGINE=InnoDB;
