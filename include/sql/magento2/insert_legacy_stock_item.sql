-- A product of the default source without a legacy stock item gets one (one created meanwhile is updated).
INSERT INTO {p}cataloginventory_stock_item (product_id, stock_id, website_id, qty, is_in_stock)
SELECT p.product_id, 1, 0, p.target_qty, p.target_status FROM stocksync_plan AS p
WHERE p.write_it AND NOT p.has_legacy_item
ON DUPLICATE KEY UPDATE qty = VALUES(qty), is_in_stock = VALUES(is_in_stock)
