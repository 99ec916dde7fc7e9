-- Every SKU and whether its product is active.
SELECT items.sku, items.enabled FROM ({items}) AS items
