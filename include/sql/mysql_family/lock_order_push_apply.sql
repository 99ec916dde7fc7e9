-- The apply's side of the order-push lock (exclusive), first in its transaction: it waits for a
-- batch being sent to commit its acknowledgements (so it never counts an order the WMS already has
-- as not counted); batches wait for the apply.
SELECT id FROM {p}stocksync_push_lock WHERE id = 1 FOR UPDATE
