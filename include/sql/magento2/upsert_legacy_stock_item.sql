-- The default source is read by the storefront through the legacy tables (MSI's indexer skips the
-- default stock): keep the stock item's qty and is_in_stock equal to the source item, as Magento's
-- own source-item save does.
INSERT INTO {p}cataloginventory_stock_item (product_id, stock_id, website_id, qty, is_in_stock)
SELECT p.product_id, 1, 0, p.target_qty, p.target_status FROM stocksync_plan AS p WHERE p.write_it
ON DUPLICATE KEY UPDATE qty = VALUES(qty), is_in_stock = VALUES(is_in_stock)
