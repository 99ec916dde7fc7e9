-- One storefront item: its shop SKU and the shop's sellable stock, in one round trip (the hot path
-- of the availability service, include/stocksync/availability/app.py).
-- Resolution (docs/availability.md): the stocksync.sku_map row for (code, options_key); else, when
-- the code has no mapping row at all, the code itself is the SKU. No row back: the code has mapping
-- rows, none for these options (unmapped options).
-- `listed` is false when the SKU is not in the shop's catalog; `freeze_message` is set while
-- checkout is frozen (it refuses every order then).
-- Placeholders: sellable (shop/select_sellable_stock.sql), freeze (shop/select_active_freeze.sql).
WITH target AS (
    SELECT m.sku, 'map'::text AS via
      FROM stocksync.sku_map m
     WHERE m.code = %(code)s AND m.options_key = %(options_key)s
    UNION ALL
    SELECT %(code)s::text, 'code'::text
     WHERE NOT EXISTS (SELECT 1 FROM stocksync.sku_map m WHERE m.code = %(code)s)
)
SELECT t.via, t.sku, st.sku IS NOT NULL AS listed, st.enabled, st.qty, st.wms_seq,
       (SELECT f.shopper_message FROM ({freeze}) f LIMIT 1) AS freeze_message
  FROM target t
  LEFT JOIN ({sellable}) st ON st.sku = t.sku
