-- The PrestaShop 8 tables stocksync reads or writes, for development and tests only: a real store
-- has them already. Names, columns and keys follow install/data/db_structure.sql, trimmed to the
-- columns stocksync uses. `{p}` is the store's table prefix (_DB_PREFIX_, `ps_` by default).
CREATE TABLE IF NOT EXISTS {p}shop_group (
  id_shop_group int unsigned NOT NULL AUTO_INCREMENT,
  name varchar(64) NOT NULL,
  share_customer tinyint(1) NOT NULL DEFAULT 0,
  share_order tinyint(1) NOT NULL DEFAULT 0,
  share_stock tinyint(1) NOT NULL DEFAULT 0,
  active tinyint(1) NOT NULL DEFAULT 1,
  deleted tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id_shop_group)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}shop (
  id_shop int unsigned NOT NULL AUTO_INCREMENT,
  id_shop_group int unsigned NOT NULL,
  name varchar(64) NOT NULL,
  id_category int unsigned NOT NULL DEFAULT 2,
  theme_name varchar(255) NOT NULL DEFAULT 'classic',
  active tinyint(1) NOT NULL DEFAULT 1,
  deleted tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (id_shop),
  KEY IDX_CBDFBB9EF5C9E40 (id_shop_group)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}product (
  id_product int unsigned NOT NULL AUTO_INCREMENT,
  reference varchar(64) DEFAULT NULL,
  active tinyint(1) unsigned NOT NULL DEFAULT 0,
  cache_default_attribute int unsigned DEFAULT NULL,
  id_shop_default int unsigned NOT NULL DEFAULT 1,
  product_type enum('standard', 'pack', 'virtual', 'combinations', '') NOT NULL DEFAULT '',
  date_add datetime NOT NULL DEFAULT current_timestamp(),
  date_upd datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (id_product),
  KEY reference_idx (reference)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}product_attribute (
  id_product_attribute int unsigned NOT NULL AUTO_INCREMENT,
  id_product int unsigned NOT NULL,
  reference varchar(64) DEFAULT NULL,
  default_on tinyint(1) unsigned DEFAULT NULL,
  PRIMARY KEY (id_product_attribute),
  KEY reference (reference),
  KEY product_default (id_product, default_on)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}stock_available (
  id_stock_available int unsigned NOT NULL AUTO_INCREMENT,
  id_product int unsigned NOT NULL,
  id_product_attribute int unsigned NOT NULL,
  id_shop int unsigned NOT NULL,
  id_shop_group int unsigned NOT NULL,
  quantity int NOT NULL DEFAULT 0,
  physical_quantity int NOT NULL DEFAULT 0,
  reserved_quantity int NOT NULL DEFAULT 0,
  depends_on_stock tinyint(1) unsigned NOT NULL DEFAULT 0,
  out_of_stock tinyint(1) unsigned NOT NULL DEFAULT 0,
  location varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (id_stock_available),
  KEY id_shop (id_shop),
  KEY id_shop_group (id_shop_group),
  KEY id_product (id_product),
  KEY id_product_attribute (id_product_attribute),
  UNIQUE KEY product_sqlstock (id_product, id_product_attribute, id_shop, id_shop_group)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}order_state (
  id_order_state int unsigned NOT NULL AUTO_INCREMENT,
  invoice tinyint(1) unsigned DEFAULT 0,
  send_email tinyint(1) unsigned NOT NULL DEFAULT 0,
  module_name varchar(255) DEFAULT NULL,
  color varchar(32) DEFAULT NULL,
  unremovable tinyint(1) unsigned NOT NULL DEFAULT 0,
  hidden tinyint(1) unsigned NOT NULL DEFAULT 0,
  logable tinyint(1) NOT NULL DEFAULT 0,
  delivery tinyint(1) unsigned NOT NULL DEFAULT 0,
  shipped tinyint(1) unsigned NOT NULL DEFAULT 0,
  paid tinyint(1) unsigned NOT NULL DEFAULT 0,
  pdf_invoice tinyint(1) unsigned NOT NULL DEFAULT 0,
  pdf_delivery tinyint(1) unsigned NOT NULL DEFAULT 0,
  deleted tinyint(1) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (id_order_state)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}orders (
  id_order int unsigned NOT NULL AUTO_INCREMENT,
  reference varchar(9) DEFAULT NULL,
  id_shop_group int unsigned NOT NULL DEFAULT 1,
  id_shop int unsigned NOT NULL DEFAULT 1,
  current_state int unsigned NOT NULL,
  valid tinyint(1) unsigned NOT NULL DEFAULT 0,
  date_add datetime NOT NULL DEFAULT current_timestamp(),
  date_upd datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (id_order),
  KEY reference (reference),
  KEY current_state (current_state),
  KEY id_shop (id_shop),
  KEY date_add (date_add)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}order_detail (
  id_order_detail int unsigned NOT NULL AUTO_INCREMENT,
  id_order int unsigned NOT NULL,
  id_shop int unsigned NOT NULL DEFAULT 1,
  product_id int unsigned NOT NULL,
  product_attribute_id int unsigned DEFAULT NULL,
  product_name varchar(255) NOT NULL DEFAULT '',
  product_quantity int unsigned NOT NULL DEFAULT 0,
  product_quantity_refunded int unsigned NOT NULL DEFAULT 0,
  product_quantity_return int unsigned NOT NULL DEFAULT 0,
  product_quantity_reinjected int unsigned NOT NULL DEFAULT 0,
  product_reference varchar(64) DEFAULT NULL,
  PRIMARY KEY (id_order_detail),
  KEY order_detail_order (id_order),
  KEY product_id (product_id, product_attribute_id),
  KEY product_attribute_id (product_attribute_id)
) ENGINE=InnoDB;
-- Combinations: the attribute values of each (product_attribute_combination) and their names and
-- their groups' public names in a language (the shopper's "Size: M").
CREATE TABLE IF NOT EXISTS {p}product_attribute_combination (
  id_attribute int unsigned NOT NULL,
  id_product_attribute int unsigned NOT NULL,
  PRIMARY KEY (id_attribute, id_product_attribute),
  KEY id_product_attribute (id_product_attribute)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}attribute (
  id_attribute int unsigned NOT NULL AUTO_INCREMENT,
  id_attribute_group int unsigned NOT NULL,
  color varchar(32) NOT NULL DEFAULT '',
  position int unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (id_attribute),
  KEY attribute_group (id_attribute_group)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}attribute_lang (
  id_attribute int unsigned NOT NULL,
  id_lang int unsigned NOT NULL,
  name varchar(128) NOT NULL,
  PRIMARY KEY (id_attribute, id_lang)
) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS {p}attribute_group_lang (
  id_attribute_group int unsigned NOT NULL,
  id_lang int unsigned NOT NULL,
  name varchar(128) NOT NULL,
  public_name varchar(64) NOT NULL,
  PRIMARY KEY (id_attribute_group, id_lang)
) ENGINE=InnoDB;
