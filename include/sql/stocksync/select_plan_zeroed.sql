-- SKUs a plan would take from in stock to 0 (what trips the max_zeroed_share guardrail), the most
-- stock lost first, with how many there are in all.
SELECT sku, old_qty, wms_available, adjustment, new_qty, new_qty - old_qty AS delta, outcome,
       count(*) OVER () AS total
  FROM {plan}
 WHERE outcome NOT IN ('unknown', 'stale') AND old_qty > 0 AND new_qty = 0
 ORDER BY old_qty DESC, sku
 LIMIT %(limit)s
