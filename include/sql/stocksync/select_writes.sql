-- The apply's final writes, handed to the shop port's sequence-guarded write under its lock.
SELECT sku, new_qty, wms_seq FROM {writes} ORDER BY sku
