-- The shop's current sellable stock per SKU and the last WMS sequence applied to it.
SELECT sku, qty, wms_seq
  FROM {shop}.stock
