-- An order-push batch's side of the order-push lock (share mode): held from before the batch is
-- sent to the WMS until its acknowledgements commit. Batches do not wait for each other; an apply
-- (lock_order_push_apply.sql) waits for them. Checkout never takes this lock.
SELECT id FROM {p}stocksync_push_lock WHERE id = 1 LOCK IN SHARE MODE
