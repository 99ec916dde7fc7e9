-- A transaction-local table of in-window demand per SKU (filled from shop/select_in_window_demand).
CREATE TEMP TABLE {demand} (sku text PRIMARY KEY, unsent_qty bigint NOT NULL, cart_qty bigint NOT NULL) ON COMMIT DROP
