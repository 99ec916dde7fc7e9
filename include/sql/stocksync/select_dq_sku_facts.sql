-- Validation's SKU pass (include/stocksync/sync/validate.py): rows, non-null SKUs, SKUs whose length is
-- outside %(lengths)s, rows whose SKU the shop's catalog lacks (a NULL SKU included), and distinct
-- 64-bit hashes of the SKUs (fewer than the SKUs: a duplicate, or a rare collision, looked at by value).
SELECT count(*) AS rows,
       count(r.sku) AS skus,
       count(*) FILTER (WHERE char_length(r.sku) NOT BETWEEN (%(lengths)s::int[])[1] AND (%(lengths)s::int[])[2])
           AS bad_length,
       count(*) FILTER (WHERE cat.sku IS NULL) AS unknown,
       count(DISTINCT hashtextextended(r.sku, 0)) AS distinct_hashes
  FROM {raw} r
  LEFT JOIN ({catalog}) cat ON cat.sku = r.sku
