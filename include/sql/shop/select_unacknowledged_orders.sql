-- Orders the WMS has not acknowledged yet, in the statuses the order push sends
-- (include/stocksync/sync/order_push.py; composed into stocksync/select_orders_to_push.sql).
SELECT o.order_id, o.created_at
  FROM {shop}.orders o
 WHERE o.wms_acknowledged_at IS NULL
   AND o.status = ANY (%(statuses)s)
