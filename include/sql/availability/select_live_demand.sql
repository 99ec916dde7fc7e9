-- The in-window demand of the one live item, read from the shop under its row lock
-- (shop/select_in_window_demand.sql for one SKU), as the `demand` relation of
-- stocksync/select_sku_outcomes.sql: bound values, no table.
SELECT %(sku)s::text AS sku, %(unsent_qty)s::bigint AS unsent_qty, %(cart_qty)s::bigint AS cart_qty
