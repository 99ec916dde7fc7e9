-- A run's copy of the shop's catalog (include/stocksync/sync/shop_mirror.py), streamed in through
-- the shop port: stocksync's SQL joins this, never the shop's tables. Dropped with the run's staging.
CREATE UNLOGGED TABLE IF NOT EXISTS {catalog} (sku text PRIMARY KEY, enabled boolean NOT NULL)
