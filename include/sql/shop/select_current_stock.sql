-- The shop's current sellable stock per SKU and the last WMS sequence applied to it.
-- A catalog product without a stock row yet (newly listed) counts as 0 with sequence -1,
-- so the sync creates its row (shop/update_stock.sql) instead of calling it unknown.
SELECT sku, qty, wms_seq
  FROM shop.stock
UNION ALL
SELECT p.sku, 0, -1
  FROM shop.products p
 WHERE NOT EXISTS (SELECT 1 FROM shop.stock st WHERE st.sku = p.sku)
