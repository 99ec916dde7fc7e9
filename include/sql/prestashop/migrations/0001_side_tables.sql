-- stocksync's own tables in the PrestaShop database (never a column added to a PrestaShop table).
-- The WMS sequence last applied per SKU (a product or combination reference) of the stock scope.
CREATE TABLE IF NOT EXISTS {p}stocksync_sku_state (
  scope varchar(32) NOT NULL,
  sku varchar(64) NOT NULL,
  wms_seq bigint NOT NULL,
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (scope, sku)
) ENGINE=InnoDB;
-- When the WMS acknowledged (counted) an order.
CREATE TABLE IF NOT EXISTS {p}stocksync_order_ack (
  id_order int unsigned NOT NULL,
  acknowledged_at datetime(6) NOT NULL,
  PRIMARY KEY (id_order)
) ENGINE=InnoDB;
