-- The one live item as the `catalog` relation of stocksync/select_sku_outcomes.sql: the lookup
-- found it in the shop's catalog (shop/select_sellable_stock.sql) and its stock row is locked.
SELECT %(sku)s::text AS sku, true AS enabled
