-- The SKUs of the first rows a check kept out of the load, in row order (the check's own examples are
-- the values of the column it tested; unknown_sku tests a derived flag, so they read `false`).
SELECT sku FROM stocksync.quarantine
 WHERE run_id = %(run_id)s AND %(check_name)s = ANY(reasons)
 ORDER BY row_no
 LIMIT %(limit)s
