-- Every non-null SKU, in chunks of %(chunk)s rows, for the SKU pattern check in Python (validate.py):
-- one newline-separated text per chunk, and apart, as an array, the SKUs holding a newline.
SELECT string_agg(sku, E'\n') FILTER (WHERE strpos(sku, E'\n') = 0),
       array_agg(sku) FILTER (WHERE strpos(sku, E'\n') > 0)
  FROM {raw}
 WHERE sku IS NOT NULL
 GROUP BY row_no / %(chunk)s
