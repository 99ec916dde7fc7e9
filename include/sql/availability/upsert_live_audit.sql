-- The audit row of a live write-back under the day's run record (stocksync.sku_audit keeps one row
-- per run and SKU): the first write-back of the day sets old_qty/old_seq (the shop before the
-- day's live writes), every later one replaces the WMS figures, the adjustment, new_qty and outcome.
INSERT INTO stocksync.sku_audit AS a (run_id, sku, snapshot_id, old_qty, old_seq, wms_available, wms_seq, adjustment,
                                      new_qty, outcome)
VALUES (%(run_id)s, %(sku)s, %(snapshot_id)s, %(old_qty)s, %(old_seq)s, %(wms_available)s, %(wms_seq)s,
        %(adjustment)s, %(new_qty)s, %(outcome)s)
ON CONFLICT (run_id, sku) DO UPDATE
   SET snapshot_id = EXCLUDED.snapshot_id, wms_available = EXCLUDED.wms_available, wms_seq = EXCLUDED.wms_seq,
       adjustment = EXCLUDED.adjustment, new_qty = EXCLUDED.new_qty, outcome = EXCLUDED.outcome
