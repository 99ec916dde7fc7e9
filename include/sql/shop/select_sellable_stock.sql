-- The shop's sellable stock per SKU, as its checkout (shop.place_order) sees it: `qty` is what an
-- order may take now; a product without a stock row is refused by checkout (sellable 0); a
-- disabled product is not on sale. The availability service composes this file as a subquery
-- and filters one SKU (include/stocksync/shop/postgres/live.py), so a shop with other tables
-- rewrites this file and keeps its columns: sku, enabled, qty (NULL: no stock row), wms_seq.
SELECT p.sku, p.enabled, s.qty, s.wms_seq
  FROM {shop}.products p
  LEFT JOIN {shop}.stock s ON s.sku = p.sku
