INSERT INTO {writes} (sku, new_qty, wms_seq)
SELECT sku, new_qty, wms_seq
  FROM {outcomes_table}
 WHERE outcome IN ('changed', 'clamped', 'unchanged')
   AND (new_qty <> old_qty OR wms_seq > old_seq)
