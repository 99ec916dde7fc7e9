-- The in-window demand (shop/select_in_window_demand.sql, placeholder `demand`) of one SKU: the
-- filter on the grouping column is pushed into the query, so only that SKU's order lines are read.
SELECT d.* FROM ({demand}) d WHERE d.sku = %(sku)s
