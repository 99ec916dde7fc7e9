INSERT INTO {writes} (sku, new_qty, wms_seq)
SELECT sku, new_qty, wms_seq
  FROM stocksync.sku_audit
 WHERE run_id = %(run_id)s
   AND outcome IN ('changed', 'clamped', 'unchanged')
   AND (new_qty <> old_qty OR wms_seq > old_seq)
