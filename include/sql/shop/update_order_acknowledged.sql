-- Record the WMS's acknowledgement time (its receipt's received_at: the WMS's clock, which its
-- snapshots' orders_counted_until and the change feed's watermark are on) on each sent order.
-- An order already acknowledged keeps its first time (a repeat answer carries the same one anyway).
UPDATE {shop}.orders o
   SET wms_acknowledged_at = a.acknowledged_at
  FROM unnest(%(order_ids)s::bigint[], %(acknowledged_at)s::timestamptz[]) AS a(order_id, acknowledged_at)
 WHERE o.order_id = a.order_id
   AND o.wms_acknowledged_at IS NULL
RETURNING o.order_id
