-- Only for the availability service's live mode (STOCKSYNC_AVAILABILITY_LIVE_MODE=true,
-- docs/availability.md): it then writes the WMS's figure for the one SKU back into the shop and
-- records it. Run after shop_grants.sql and stocksync_grants.sql; a read-only service never needs
-- this file. REVOKE the same to go back to read-only.

-- The shop's section ({shop}): lock_stock_row (FOR UPDATE), update_stock_live,
-- select_in_window_demand, select_current_stock, select_catalog_skus.
GRANT SELECT ON {shop}.orders, {shop}.order_lines, {shop}.carts, {shop}.cart_lines TO stocksync_availability;
GRANT UPDATE (qty, wms_seq, updated_at) ON {shop}.stock TO stocksync_availability;

-- stocksync's section: upsert_live_run, upsert_live_audit.
GRANT SELECT, INSERT, UPDATE ON stocksync.sync_runs, stocksync.sku_audit TO stocksync_availability;
