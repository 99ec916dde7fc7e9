-- What the WMS's SKUs are in PrestaShop: a combination's reference (items_combinations.sql), or the
-- reference of a product without combinations, its row id_product_attribute = 0
-- (items_products.sql). Empty references are no SKU. A reference used by several items names the
-- first of them, the lowest (id_product, id_product_attribute), and `enabled` is that item's
-- product's `active` (earlier_items.sql). Each reference is kept by one item only, so the two halves
-- never repeat a SKU and need no grouping.
--
-- Filled with the two halves of the items, this is their union, a derived table of the filtered
-- reads (the apply's planned SKUs, the demand's ordered ones); filled with one statement over each
-- half (select_stock.sql, select_catalog.sql, select_item.sql), it is that statement over every
-- item: a top-level UNION ALL, which MariaDB sends as each half reads it (no temporary table).
{combinations}
UNION ALL
{products}
