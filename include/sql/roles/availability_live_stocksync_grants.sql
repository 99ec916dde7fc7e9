-- Only for the availability service's live mode, stocksync's part: each write-back is recorded under
-- the day's run record (upsert_live_run) with its audit row (upsert_live_audit). Run in stocksync's
-- database after stocksync_grants.sql (the shop's part: availability_live_shop_grants.sql).
GRANT SELECT, INSERT, UPDATE ON stocksync.sync_runs, stocksync.sku_audit TO stocksync_availability;
