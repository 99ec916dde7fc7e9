-- Items on sale.
SELECT code AS sku FROM {shop}.item WHERE active
