-- What one batch got from the WMS, per order: the receipt and its acknowledgement time, and every
-- HTTP status seen (a repeat answer, 200, means the WMS already had the order).
INSERT INTO stocksync.order_pushes AS p (order_id, idempotency_key, receipt_id, acknowledged_at, recorded_at, answers)
SELECT a.order_id, a.idempotency_key, a.receipt_id, a.acknowledged_at, clock_timestamp(), a.answers::jsonb
  FROM unnest(%(order_ids)s::bigint[], %(keys)s::text[], %(receipt_ids)s::text[], %(acknowledged_at)s::timestamptz[],
              %(answers)s::text[]) AS a(order_id, idempotency_key, receipt_id, acknowledged_at, answers)
ON CONFLICT (order_id) DO UPDATE
   SET receipt_id = coalesce(p.receipt_id, EXCLUDED.receipt_id),
       acknowledged_at = coalesce(p.acknowledged_at, EXCLUDED.acknowledged_at),
       recorded_at = coalesce(p.recorded_at, EXCLUDED.recorded_at),
       answers = p.answers || EXCLUDED.answers
