-- Only for the availability service's live mode (STOCKSYNC_AVAILABILITY_LIVE_MODE=true,
-- docs/availability.md), the shop's part: it then writes the WMS's figure for the one SKU back into
-- the shop. Run in the shop's database after shop_grants.sql (stocksync's part,
-- availability_live_stocksync_grants.sql, runs in stocksync's database); a read-only service never
-- needs this file. REVOKE the same to go back to read-only.

-- lock_stock_row (FOR UPDATE), update_stock_live, select_in_window_demand (its orders and carts).
GRANT SELECT ON {shop}.orders, {shop}.order_lines, {shop}.carts, {shop}.cart_lines TO stocksync_availability;
GRANT UPDATE (qty, wms_seq, updated_at) ON {shop}.stock TO stocksync_availability;
