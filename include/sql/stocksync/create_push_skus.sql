-- The SKUs an ops push is limited to (transaction-local).
CREATE TEMP TABLE {push_skus} (sku text PRIMARY KEY) ON COMMIT DROP
