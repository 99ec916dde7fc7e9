-- The shop's locked stock row of the one live item (shop/lock_stock_row.sql) as the
-- `current_stock` relation of stocksync/select_sku_outcomes.sql: bound values, no table.
SELECT %(sku)s::text AS sku, %(old_qty)s::integer AS qty, %(old_seq)s::bigint AS wms_seq
