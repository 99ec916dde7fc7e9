-- The rows carrying any of %(skus)s, in row order (validate.py).
SELECT row_no, sku FROM {raw} WHERE sku = ANY (%(skus)s) ORDER BY row_no
