INSERT INTO {push_skus} (sku) SELECT DISTINCT unnest(%(skus)s::text[])
