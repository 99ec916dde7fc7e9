-- Re-queue held orders (listed ones, or all with %(all)s): the next push sends them again. The
-- row stays as history of the refusal.
UPDATE stocksync.order_dead_letters
   SET requeued_at = clock_timestamp(), requeued_by = %(requeued_by)s
 WHERE requeued_at IS NULL
   AND (%(all)s OR order_id = ANY (%(order_ids)s))
RETURNING order_id
