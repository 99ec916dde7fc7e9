-- The legacy stock index of the default stock (`inventory_stock_1` is a view over it).
INSERT INTO {p}cataloginventory_stock_status (product_id, website_id, stock_id, qty, stock_status)
SELECT p.product_id, 0, 1, p.target_qty, p.target_status FROM stocksync_plan AS p WHERE p.write_it
ON DUPLICATE KEY UPDATE qty = VALUES(qty), stock_status = VALUES(stock_status)
