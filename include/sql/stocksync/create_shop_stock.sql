-- A run's copy of the shop's current stock (include/stocksync/sync/shop_mirror.py), refreshed
-- through the shop port before the plan and before the apply. Dropped with the run's staging.
CREATE UNLOGGED TABLE IF NOT EXISTS {stock} (sku text PRIMARY KEY, qty integer NOT NULL, wms_seq bigint NOT NULL)
