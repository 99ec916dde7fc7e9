-- The shop's current sellable stock per SKU and the last WMS sequence applied to it.
SELECT st.sku, st.qty, st.wms_seq, p.enabled
  FROM shop.stock st
  JOIN shop.products p ON p.sku = st.sku
