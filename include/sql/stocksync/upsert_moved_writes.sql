INSERT INTO {writes} (sku, new_qty, wms_seq)
SELECT sku, new_qty, wms_seq
  FROM stocksync.sku_audit
 WHERE run_id = %(run_id)s AND sku = ANY (%(skus)s) AND outcome IN ('changed', 'clamped', 'unchanged')
ON CONFLICT (sku) DO UPDATE SET new_qty = excluded.new_qty, wms_seq = excluded.wms_seq
