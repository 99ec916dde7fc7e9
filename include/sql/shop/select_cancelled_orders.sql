-- Orders the WMS acknowledged that the shop has since cancelled: their WMS allocation must be
-- released (composed into stocksync/select_cancels_to_send.sql).
SELECT o.order_id, o.created_at
  FROM {shop}.orders o
 WHERE o.wms_acknowledged_at IS NOT NULL
   AND o.status = ANY (%(cancelled_statuses)s)
