-- Rows whose SKU length is outside %(lengths)s, in row order (validate.py; %(limit)s NULL: all).
SELECT row_no, sku
  FROM {raw}
 WHERE char_length(sku) NOT BETWEEN (%(lengths)s::int[])[1] AND (%(lengths)s::int[])[2]
 ORDER BY row_no
 LIMIT %(limit)s
