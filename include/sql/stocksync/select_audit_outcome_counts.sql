SELECT outcome, count(*) FROM stocksync.sku_audit WHERE run_id = %(run_id)s GROUP BY outcome
