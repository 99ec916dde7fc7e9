-- The quarantined rows with their reasons (%(rows)s: a JSON array of row_no and reasons) and their raw
-- values as text (validate.py; raw_values: the page and every contract field, by name).
INSERT INTO stocksync.quarantine (run_id, row_no, sku, reasons, raw)
SELECT %(run_id)s, r.row_no, r.sku, q.reasons, jsonb_build_object({raw_values})
  FROM {raw} r
  JOIN jsonb_to_recordset(%(rows)s::jsonb) AS q (row_no bigint, reasons text[]) ON q.row_no = r.row_no
