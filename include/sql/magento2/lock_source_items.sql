-- Lock the WMS source's items against Magento's shipments and credit memos (they deduct from or
-- add to the source item before writing their compensating reservation): a shipment that lands
-- during the apply waits and then deducts from the written figure. Checkout never waits (Magento
-- places orders by appending reservations, without a lock).
SELECT COUNT(*) FROM {p}inventory_source_item WHERE source_code = %(source_code)s FOR UPDATE
