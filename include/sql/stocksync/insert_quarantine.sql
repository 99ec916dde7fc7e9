INSERT INTO stocksync.quarantine (run_id, row_no, sku, reasons, raw)
VALUES (%(run_id)s, %(row_no)s, %(sku)s, %(reasons)s, %(raw)s::jsonb)
