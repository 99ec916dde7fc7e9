-- Every item the shop knows, and whether it is on sale.
SELECT code AS sku, active AS enabled FROM {shop}.item
