-- Recompute the audit rows of moved SKUs from the locked stock and the locked demand.
UPDATE stocksync.sku_audit au
   SET old_qty = o.old_qty, old_seq = o.old_seq, adjustment = o.adjustment, new_qty = o.new_qty, outcome = o.outcome
  FROM ({outcomes}) o
 WHERE au.run_id = %(run_id)s AND au.sku = o.sku AND o.sku = ANY (%(skus)s)
