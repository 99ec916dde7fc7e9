-- Rows without a SKU, in row order (validate.py; %(limit)s NULL: all).
SELECT row_no, sku FROM {raw} WHERE sku IS NULL ORDER BY row_no LIMIT %(limit)s
