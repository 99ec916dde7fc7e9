-- A snapshot that was already applied: every SKU is recorded as a duplicate, nothing changes.
INSERT INTO stocksync.sku_audit (run_id, sku, snapshot_id, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome)
SELECT %(run_id)s, p.sku, %(snapshot_id)s, cur.qty, cur.wms_seq, p.wms_available, p.wms_seq, 0, cur.qty, 'duplicate'
  FROM {plan} p
  LEFT JOIN ({current_stock}) cur ON cur.sku = p.sku
ON CONFLICT (run_id, sku) DO NOTHING
