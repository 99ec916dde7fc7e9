-- Rows whose SKU the shop's catalog lacks (a NULL SKU included), in row order (validate.py; %(limit)s NULL: all).
SELECT r.row_no, r.sku
  FROM {raw} r
  LEFT JOIN ({catalog}) cat ON cat.sku = r.sku
 WHERE cat.sku IS NULL
 ORDER BY r.row_no
 LIMIT %(limit)s
