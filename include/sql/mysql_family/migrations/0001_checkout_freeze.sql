-- stocksync's checkout freeze in the store's database (never a column added to a platform table):
-- one row per freeze. Checkout is closed while any row is unreleased and unexpired; the web server
-- refuses checkout requests then (GET /checkout-freeze of the availability service, deploy/nginx/).
-- A sync run releases only the rows it set (set_by = its run id), so a manual maintenance freeze
-- stays; an expired row is ignored (dead man's switch). Times are UTC (the adapter's sessions run
-- with time_zone '+00:00').
CREATE TABLE IF NOT EXISTS {p}stocksync_checkout_freeze (
  freeze_id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
  reason varchar(500) NOT NULL,
  shopper_message varchar(2000) NOT NULL,
  set_by varchar(250) NOT NULL,
  set_at datetime(6) NOT NULL,
  expires_at datetime(6) NOT NULL,
  released_at datetime(6) NULL,
  KEY stocksync_checkout_freeze_active (released_at, expires_at),
  KEY stocksync_checkout_freeze_holder (set_by, released_at),
  CONSTRAINT stocksync_checkout_freeze_expiry CHECK (expires_at > set_at)
) ENGINE=InnoDB;
