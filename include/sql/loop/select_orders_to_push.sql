-- The next batch of orders to send, oldest first: unacknowledged, in the statuses sent, and not
-- held in the dead-letter table (a re-queued dead letter is sent again).
SELECT o.order_id, o.created_at
  FROM ({unacknowledged}) o
 WHERE NOT EXISTS (SELECT 1 FROM stocksync.order_dead_letters d
                    WHERE d.order_id = o.order_id AND d.requeued_at IS NULL)
 ORDER BY o.created_at, o.order_id
 LIMIT %(limit)s
