-- The default source is read by the storefront through the legacy tables (MSI's indexer skips the
-- default stock): keep the stock item's qty and is_in_stock equal to the source item, as Magento's
-- own source-item save does. Updated where they stand (see update_source_items.sql), the missing
-- ones inserted by insert_legacy_stock_item.sql.
UPDATE stocksync_plan AS p
STRAIGHT_JOIN {p}cataloginventory_stock_item AS csi ON csi.product_id = p.product_id AND csi.stock_id = 1
SET csi.qty = p.target_qty, csi.is_in_stock = p.target_status
WHERE p.write_it
