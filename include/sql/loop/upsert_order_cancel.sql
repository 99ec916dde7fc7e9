-- The WMS's answer to a cancellation: its cancellation receipt and time, or why it refused.
INSERT INTO stocksync.order_pushes AS p (order_id, idempotency_key, cancel_receipt_id, cancelled_at, cancel_refused)
VALUES (%(order_id)s, %(key)s, %(cancel_receipt_id)s, %(cancelled_at)s, %(cancel_refused)s)
ON CONFLICT (order_id) DO UPDATE
   SET cancel_receipt_id = coalesce(p.cancel_receipt_id, EXCLUDED.cancel_receipt_id),
       cancelled_at = coalesce(p.cancelled_at, EXCLUDED.cancelled_at),
       cancel_refused = CASE WHEN coalesce(p.cancelled_at, EXCLUDED.cancelled_at) IS NULL
                             THEN EXCLUDED.cancel_refused END
