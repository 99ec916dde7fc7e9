-- A transaction-local copy of shop orders read through the shop port (the order push's queue or
-- the cancelled orders), joined with stocksync's own order-push records.
CREATE TEMP TABLE {orders} (order_id bigint PRIMARY KEY, created_at timestamptz NOT NULL) ON COMMIT DROP
