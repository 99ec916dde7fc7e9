-- A catalog SKU without an item of the WMS's source gets one (an item created meanwhile is updated).
INSERT INTO {p}inventory_source_item (source_code, sku, quantity, status)
SELECT %(source_code)s, p.sku, p.target_qty, p.target_status FROM stocksync_plan AS p
WHERE p.write_it AND NOT p.has_item
ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), status = VALUES(status)
