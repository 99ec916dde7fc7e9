-- Planned SKUs (all, or those of %(skus)s when given) and the newest WMS sequence among them.
SELECT count(*) AS skus, max(wms_seq) AS max_seq
  FROM {plan}
 WHERE %(skus)s::text[] IS NULL OR sku = ANY (%(skus)s)
