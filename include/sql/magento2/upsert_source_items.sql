-- The WMS source's items of the planned SKUs that move (a catalog SKU without one gets it).
INSERT INTO {p}inventory_source_item (source_code, sku, quantity, status)
SELECT %(source_code)s, p.sku, p.target_qty, p.target_status FROM stocksync_plan AS p WHERE p.write_it
ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), status = VALUES(status)
