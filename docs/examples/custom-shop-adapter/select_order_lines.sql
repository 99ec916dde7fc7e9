-- The lines of the purchases about to be sent, one row per (purchase, item).
SELECT purchase_id AS order_id, code AS sku, sum(units)::integer AS qty
  FROM {shop}.purchase_line
 WHERE purchase_id = ANY (%(order_ids)s)
 GROUP BY purchase_id, code
 ORDER BY purchase_id, code
