-- One SKU's stock row, locked the way checkout locks it (shop.place_order: FOR UPDATE), taken by
-- the availability service's live write-back: no order can land between its count of the
-- uncounted orders and its write. Waits at most lock_timeout (a nightly apply holds the table).
SELECT qty, wms_seq FROM {shop}.stock WHERE sku = %(sku)s FOR UPDATE
