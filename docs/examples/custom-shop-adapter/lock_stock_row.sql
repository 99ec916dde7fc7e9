-- One item's inventory row, locked as checkout locks it.
SELECT floor(i.on_hand)::integer AS qty, coalesce(s.wms_seq, 0) AS wms_seq
  FROM {shop}.inventory i
  LEFT JOIN {shop}.stocksync_seq s ON s.code = i.code
 WHERE i.code = %(sku)s
   FOR UPDATE OF i
