-- The WMS source's items of the planned SKUs that move, updated where they stand (an INSERT ... ON
-- DUPLICATE KEY UPDATE would first insert each row under a new source_item_id, hit the unique
-- (source_code, sku) key, undo the insert and then update: at 30k rows about 3 times the work).
UPDATE stocksync_plan AS p
STRAIGHT_JOIN {p}inventory_source_item AS si ON si.source_code = %(source_code)s AND si.sku = p.sku
SET si.quantity = p.target_qty, si.status = p.target_status
WHERE p.write_it
