-- Forget what the apply computed for SKUs whose demand moved while it waited for the lock: their
-- outcomes, audit rows and writes are recomputed from the locked stock.
WITH outcomes AS (DELETE FROM {outcomes_table} WHERE sku = ANY (%(skus)s)),
     audit AS (DELETE FROM stocksync.sku_audit WHERE run_id = %(run_id)s AND sku = ANY (%(skus)s))
DELETE FROM {writes} WHERE sku = ANY (%(skus)s)
