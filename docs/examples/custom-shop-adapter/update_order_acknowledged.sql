-- This shop calls the WMS's acknowledgement its export time; a first one is kept.
UPDATE {shop}.purchase p
   SET exported_at = a.acknowledged_at
  FROM unnest(%(order_ids)s::bigint[], %(acknowledged_at)s::timestamptz[]) AS a(order_id, acknowledged_at)
 WHERE p.id = a.order_id
   AND p.exported_at IS NULL
RETURNING p.id AS order_id
