-- Lock the WMS source's items of the planned SKUs (stocksync_plan), in SKU order, against Magento's
-- shipments and credit memos (they deduct from or add to the source item before writing their
-- compensating reservation): one that lands during the write waits and then deducts from the
-- written figure. Only the rows written are locked; checkout never waits (Magento places orders by
-- appending reservations, without a lock).
SELECT COUNT(*)
FROM stocksync_plan AS p
JOIN {p}inventory_source_item AS si FORCE INDEX (INVENTORY_SOURCE_ITEM_SOURCE_CODE_SKU)
  ON si.source_code = %(source_code)s AND si.sku = p.sku
FOR UPDATE
