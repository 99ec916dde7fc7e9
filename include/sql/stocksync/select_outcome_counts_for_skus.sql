SELECT outcome, count(*) FROM stocksync.sku_audit WHERE run_id = %(run_id)s AND sku = ANY (%(skus)s) GROUP BY outcome
