-- The stocks the WMS's source belongs to.
SELECT stock_id FROM {p}inventory_source_stock_link WHERE source_code = %(source_code)s ORDER BY stock_id
