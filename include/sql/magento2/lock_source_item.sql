-- One SKU's item of the WMS source, locked as Magento's shipments and credit memos lock it (the
-- availability service's live write-back; the apply locks them all, lock_source_items.sql).
SELECT quantity FROM {p}inventory_source_item WHERE source_code = %(source_code)s AND sku = %(sku)s FOR UPDATE
