-- The shop SKU of one storefront item, on stocksync's database (the first half of the hot path of
-- the availability service, include/stocksync/availability/app.py; the shop is asked second).
-- Resolution (docs/availability.md): the stocksync.sku_map row for (code, options_key); else, when
-- the code has no mapping row at all, the code itself is the SKU. No row back: the code has mapping
-- rows, none for these options (unmapped options).
SELECT m.sku, 'map'::text AS via
  FROM stocksync.sku_map m
 WHERE m.code = %(code)s AND m.options_key = %(options_key)s
UNION ALL
SELECT %(code)s::text, 'code'::text
 WHERE NOT EXISTS (SELECT 1 FROM stocksync.sku_map m WHERE m.code = %(code)s)
