-- SKUs on sale: the catalog a snapshot is expected to cover.
SELECT sku FROM {shop}.products WHERE enabled
