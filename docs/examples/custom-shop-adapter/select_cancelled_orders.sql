-- Purchases the WMS has that the shop has since cancelled.
SELECT id AS order_id, placed_at AS created_at
  FROM {shop}.purchase
 WHERE exported_at IS NOT NULL
   AND state = ANY (%(cancelled_statuses)s)
