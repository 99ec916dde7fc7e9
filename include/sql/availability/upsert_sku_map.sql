-- Map a storefront item (code + canonical options key, see skus.py: options_key) to a shop SKU.
INSERT INTO stocksync.sku_map (code, options_key, sku)
VALUES (%(code)s, %(options_key)s, %(sku)s)
ON CONFLICT (code, options_key) DO UPDATE SET sku = EXCLUDED.sku, updated_at = clock_timestamp()
