-- Purchases not exported to the WMS yet, in the states the order push sends.
SELECT id AS order_id, placed_at AS created_at
  FROM {shop}.purchase
 WHERE exported_at IS NULL
   AND state = ANY (%(statuses)s)
