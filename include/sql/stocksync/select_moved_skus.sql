-- SKUs whose in-window demand moved between the first read and the locked re-read:
-- orders committed (or re-statused) while the apply was waiting for the lock.
SELECT coalesce(b.sku, a.sku) AS sku
  FROM {before} a
  FULL JOIN {after} b ON b.sku = a.sku
 WHERE a.unsent_qty IS DISTINCT FROM b.unsent_qty OR a.cart_qty IS DISTINCT FROM b.cart_qty
