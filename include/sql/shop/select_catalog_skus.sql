-- Every SKU the shop knows, and whether it is on sale.
SELECT sku, enabled FROM {shop}.products
