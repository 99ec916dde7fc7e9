-- Cancelled orders the WMS acknowledged whose cancellation it has not confirmed (or refused) yet.
SELECT c.order_id
  FROM ({cancelled}) c
  LEFT JOIN stocksync.order_pushes p ON p.order_id = c.order_id
 WHERE p.cancelled_at IS NULL AND p.cancel_refused IS NULL
 ORDER BY c.created_at, c.order_id
 LIMIT %(limit)s
