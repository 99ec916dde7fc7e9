-- A non-default stock's index table, as MSI's indexer creates it (development and tests only).
CREATE TABLE IF NOT EXISTS {index} (
  sku varchar(64) NOT NULL,
  quantity decimal(10,4) NOT NULL DEFAULT 0.0000,
  is_salable tinyint(1) NOT NULL,
  PRIMARY KEY (sku),
  KEY index_sku_qty (sku, quantity)
) ENGINE=InnoDB
