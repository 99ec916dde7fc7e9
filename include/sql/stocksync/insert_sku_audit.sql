INSERT INTO stocksync.sku_audit (run_id, sku, snapshot_id, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome)
SELECT %(run_id)s, o.sku, %(snapshot_id)s, o.old_qty, o.old_seq, o.wms_available, o.wms_seq, o.adjustment, o.new_qty, o.outcome
  FROM {outcomes_table} o
