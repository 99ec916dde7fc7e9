-- Listed SKUs the WMS snapshot does not have, or the shop does not sell.
SELECT s.sku, CASE WHEN p.sku IS NULL THEN 'not in the WMS snapshot' ELSE 'not in the shop catalog' END AS problem
  FROM {push_skus} s
  LEFT JOIN {plan} p ON p.sku = s.sku
 WHERE p.sku IS NULL OR p.outcome = 'unknown'
 ORDER BY s.sku
