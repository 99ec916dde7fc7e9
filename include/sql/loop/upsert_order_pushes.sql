-- What one batch got from the WMS, per order: the receipt and its acknowledgement time, and every
-- HTTP status seen (a repeat answer, 200, means the WMS already had the order). A receipt time that
-- was not sane keeps the WMS's value and the reason beside the time used.
INSERT INTO stocksync.order_pushes AS p (order_id, idempotency_key, receipt_id, acknowledged_at, recorded_at, answers,
                                         wms_received_at, receipt_time_note)
SELECT a.order_id, a.idempotency_key, a.receipt_id, a.acknowledged_at, clock_timestamp(), a.answers::jsonb,
       a.wms_received_at, a.receipt_time_note
  FROM unnest(%(order_ids)s::bigint[], %(keys)s::text[], %(receipt_ids)s::text[], %(acknowledged_at)s::timestamptz[],
              %(answers)s::text[], %(wms_received_at)s::timestamptz[], %(receipt_time_notes)s::text[])
       AS a(order_id, idempotency_key, receipt_id, acknowledged_at, answers, wms_received_at, receipt_time_note)
ON CONFLICT (order_id) DO UPDATE
   SET receipt_id = coalesce(p.receipt_id, EXCLUDED.receipt_id),
       acknowledged_at = coalesce(p.acknowledged_at, EXCLUDED.acknowledged_at),
       recorded_at = coalesce(p.recorded_at, EXCLUDED.recorded_at),
       answers = p.answers || EXCLUDED.answers,
       wms_received_at = coalesce(p.wms_received_at, EXCLUDED.wms_received_at),
       receipt_time_note = coalesce(p.receipt_time_note, EXCLUDED.receipt_time_note)
