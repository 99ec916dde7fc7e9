-- The Magento 2 (MSI) tables stocksync reads or writes, for development and tests only: a real
-- store has them already (Magento's setup creates them). Names, columns and keys follow the
-- published declarations (magento/inventory Inventory/etc/db_schema.xml,
-- InventoryReservations/etc/db_schema.xml, InventoryIndexer's index structure, Magento
-- CatalogInventory, Catalog and Sales db_schema.xml), trimmed to the columns stocksync uses.
-- `{p}` is the store's table prefix.
CREATE TABLE IF NOT EXISTS {p}catalog_product_entity (
  entity_id int unsigned NOT NULL AUTO_INCREMENT,
  attribute_set_id smallint unsigned NOT NULL DEFAULT 0,
  type_id varchar(32) NOT NULL DEFAULT 'simple',
  sku varchar(64) NOT NULL,
  has_options smallint NOT NULL DEFAULT 0,
  required_options smallint unsigned NOT NULL DEFAULT 0,
  created_at timestamp NOT NULL DEFAULT current_timestamp(),
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (entity_id),
  KEY CATALOG_PRODUCT_ENTITY_SKU (sku)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}catalog_product_relation (
  parent_id int unsigned NOT NULL,
  child_id int unsigned NOT NULL,
  PRIMARY KEY (parent_id, child_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}cataloginventory_stock (
  stock_id smallint unsigned NOT NULL AUTO_INCREMENT,
  website_id smallint unsigned NOT NULL,
  stock_name varchar(255) DEFAULT NULL,
  PRIMARY KEY (stock_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}cataloginventory_stock_item (
  item_id int unsigned NOT NULL AUTO_INCREMENT,
  product_id int unsigned NOT NULL DEFAULT 0,
  stock_id smallint unsigned NOT NULL DEFAULT 0,
  qty decimal(12,4) DEFAULT NULL,
  min_qty decimal(12,4) NOT NULL DEFAULT 0.0000,
  use_config_min_qty smallint unsigned NOT NULL DEFAULT 1,
  is_qty_decimal smallint unsigned NOT NULL DEFAULT 0,
  backorders smallint unsigned NOT NULL DEFAULT 0,
  use_config_backorders smallint unsigned NOT NULL DEFAULT 1,
  is_in_stock smallint unsigned NOT NULL DEFAULT 0,
  manage_stock smallint unsigned NOT NULL DEFAULT 0,
  use_config_manage_stock smallint unsigned NOT NULL DEFAULT 1,
  website_id smallint unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (item_id),
  UNIQUE KEY CATALOGINVENTORY_STOCK_ITEM_PRODUCT_ID_STOCK_ID (product_id, stock_id),
  KEY CATALOGINVENTORY_STOCK_ITEM_WEBSITE_ID (website_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}cataloginventory_stock_status (
  product_id int unsigned NOT NULL,
  website_id smallint unsigned NOT NULL,
  stock_id smallint unsigned NOT NULL,
  qty decimal(12,4) NOT NULL DEFAULT 0.0000,
  stock_status smallint unsigned NOT NULL,
  PRIMARY KEY (product_id, website_id, stock_id),
  KEY CATALOGINVENTORY_STOCK_STATUS_STOCK_ID (stock_id),
  KEY CATALOGINVENTORY_STOCK_STATUS_STOCK_STATUS (stock_status)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}inventory_source (
  source_code varchar(255) NOT NULL,
  name varchar(255) NOT NULL,
  enabled smallint unsigned NOT NULL DEFAULT 1,
  country_id varchar(2) NOT NULL DEFAULT 'US',
  postcode varchar(255) NOT NULL DEFAULT '00000',
  use_default_carrier_config smallint unsigned NOT NULL DEFAULT 1,
  PRIMARY KEY (source_code)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}inventory_source_item (
  source_item_id int unsigned NOT NULL AUTO_INCREMENT,
  source_code varchar(255) NOT NULL,
  sku varchar(64) NOT NULL,
  quantity decimal(12,4) NOT NULL DEFAULT 0.0000,
  status smallint unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (source_item_id),
  UNIQUE KEY INVENTORY_SOURCE_ITEM_SOURCE_CODE_SKU (source_code, sku),
  KEY INVENTORY_SOURCE_ITEM_SKU_SOURCE_CODE_QUANTITY (sku, source_code, quantity),
  CONSTRAINT INVENTORY_SOURCE_ITEM_SOURCE_CODE_INVENTORY_SOURCE_SOURCE_CODE FOREIGN KEY (source_code)
    REFERENCES {p}inventory_source (source_code) ON DELETE CASCADE
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}inventory_stock (
  stock_id int unsigned NOT NULL AUTO_INCREMENT,
  name varchar(255) NOT NULL,
  PRIMARY KEY (stock_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}inventory_source_stock_link (
  link_id int unsigned NOT NULL AUTO_INCREMENT,
  stock_id int unsigned NOT NULL,
  source_code varchar(255) NOT NULL,
  priority smallint unsigned NOT NULL,
  PRIMARY KEY (link_id),
  UNIQUE KEY INVENTORY_SOURCE_STOCK_LINK_STOCK_ID_SOURCE_CODE (stock_id, source_code),
  KEY INVENTORY_SOURCE_STOCK_LINK_STOCK_ID_PRIORITY (stock_id, priority)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}inventory_reservation (
  reservation_id int unsigned NOT NULL AUTO_INCREMENT,
  stock_id int unsigned NOT NULL,
  sku varchar(64) NOT NULL,
  quantity decimal(10,4) NOT NULL DEFAULT 0.0000,
  metadata varchar(255) DEFAULT NULL,
  PRIMARY KEY (reservation_id),
  KEY INVENTORY_RESERVATION_STOCK_ID_SKU_QUANTITY (stock_id, sku, quantity)
) ENGINE=InnoDB;
CREATE OR REPLACE VIEW {p}inventory_stock_1 AS
  SELECT DISTINCT legacy_stock_status.product_id, legacy_stock_status.website_id, legacy_stock_status.stock_id,
         legacy_stock_status.qty AS quantity, legacy_stock_status.stock_status AS is_salable, product.sku
  FROM {p}cataloginventory_stock_status AS legacy_stock_status
  INNER JOIN {p}catalog_product_entity AS product ON legacy_stock_status.product_id = product.entity_id;
CREATE TABLE IF NOT EXISTS {p}sales_order (
  entity_id int unsigned NOT NULL AUTO_INCREMENT,
  state varchar(32) DEFAULT NULL,
  status varchar(32) DEFAULT NULL,
  increment_id varchar(32) DEFAULT NULL,
  store_id smallint unsigned DEFAULT NULL,
  created_at timestamp NOT NULL DEFAULT current_timestamp(),
  updated_at timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (entity_id),
  UNIQUE KEY SALES_ORDER_INCREMENT_ID_STORE_ID (increment_id, store_id),
  KEY SALES_ORDER_STATUS (status),
  KEY SALES_ORDER_CREATED_AT (created_at)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}sales_order_item (
  item_id int unsigned NOT NULL AUTO_INCREMENT,
  order_id int unsigned NOT NULL DEFAULT 0,
  parent_item_id int unsigned DEFAULT NULL,
  product_id int unsigned DEFAULT NULL,
  product_type varchar(255) DEFAULT NULL,
  sku varchar(255) DEFAULT NULL,
  qty_ordered decimal(12,4) DEFAULT 0.0000,
  qty_invoiced decimal(12,4) DEFAULT 0.0000,
  qty_shipped decimal(12,4) DEFAULT 0.0000,
  qty_canceled decimal(12,4) DEFAULT 0.0000,
  qty_refunded decimal(12,4) DEFAULT 0.0000,
  PRIMARY KEY (item_id),
  KEY SALES_ORDER_ITEM_ORDER_ID (order_id)
) ENGINE=InnoDB;
-- Configurable products: which simple children a parent has, the attributes that tell them apart
-- (catalog_product_super_*), and the children's option values with their admin labels (store 0).
CREATE TABLE IF NOT EXISTS {p}catalog_product_super_link (
  link_id int unsigned NOT NULL AUTO_INCREMENT,
  product_id int unsigned NOT NULL DEFAULT 0,
  parent_id int unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (link_id),
  UNIQUE KEY CATALOG_PRODUCT_SUPER_LINK_PRODUCT_ID_PARENT_ID (product_id, parent_id),
  KEY CATALOG_PRODUCT_SUPER_LINK_PARENT_ID (parent_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}catalog_product_super_attribute (
  product_super_attribute_id int unsigned NOT NULL AUTO_INCREMENT,
  product_id int unsigned NOT NULL DEFAULT 0,
  attribute_id smallint unsigned NOT NULL DEFAULT 0,
  position smallint unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (product_super_attribute_id),
  UNIQUE KEY CATALOG_PRODUCT_SUPER_ATTRIBUTE_PRODUCT_ID_ATTRIBUTE_ID (product_id, attribute_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}eav_attribute (
  attribute_id smallint unsigned NOT NULL AUTO_INCREMENT,
  entity_type_id smallint unsigned NOT NULL DEFAULT 0,
  attribute_code varchar(255) NOT NULL,
  frontend_label varchar(255) DEFAULT NULL,
  PRIMARY KEY (attribute_id),
  UNIQUE KEY EAV_ATTRIBUTE_ENTITY_TYPE_ID_ATTRIBUTE_CODE (entity_type_id, attribute_code)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}catalog_product_entity_int (
  value_id int NOT NULL AUTO_INCREMENT,
  attribute_id smallint unsigned NOT NULL DEFAULT 0,
  store_id smallint unsigned NOT NULL DEFAULT 0,
  entity_id int unsigned NOT NULL DEFAULT 0,
  value int DEFAULT NULL,
  PRIMARY KEY (value_id),
  UNIQUE KEY CATALOG_PRODUCT_ENTITY_INT_ENTITY_ID_ATTRIBUTE_ID_STORE_ID (entity_id, attribute_id, store_id)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}eav_attribute_option_value (
  value_id int unsigned NOT NULL AUTO_INCREMENT,
  option_id int unsigned NOT NULL DEFAULT 0,
  store_id smallint unsigned NOT NULL DEFAULT 0,
  value varchar(255) DEFAULT NULL,
  PRIMARY KEY (value_id),
  KEY EAV_ATTRIBUTE_OPTION_VALUE_OPTION_ID (option_id)
) ENGINE=InnoDB;
