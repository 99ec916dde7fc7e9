-- Each SKU of one half of the items (items.sql puts the two halves together) and whether its
-- product is active.
SELECT items.sku, items.enabled FROM ({items}) AS items
