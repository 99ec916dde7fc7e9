SELECT row_no, sku, reasons, raw FROM stocksync.quarantine WHERE run_id = %(run_id)s ORDER BY row_no LIMIT %(limit)s
