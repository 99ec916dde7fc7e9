-- One page of a plan for the plugin's plan browser, biggest change first, with the number of rows
-- the filters match. Filters, NULL or false meaning none: `outcome`, `sku` (a part of the SKU, any
-- case), `zeroed` (only SKUs that would go from in stock to 0).
SELECT sku, old_qty AS current_qty, wms_available, adjustment, new_qty,
       coalesce(new_qty, 0) - coalesce(old_qty, 0) AS delta, outcome, count(*) OVER () AS total
  FROM {plan}
 WHERE (%(outcome)s::text IS NULL OR outcome = %(outcome)s::text)
   AND (%(sku)s::text IS NULL OR strpos(lower(sku), lower(%(sku)s::text)) > 0)
   AND (NOT %(zeroed)s::boolean OR (outcome NOT IN ('unknown', 'stale') AND old_qty > 0 AND new_qty = 0))
 ORDER BY abs(coalesce(new_qty, 0) - coalesce(old_qty, 0)) DESC, sku
 LIMIT %(limit)s OFFSET %(offset)s
