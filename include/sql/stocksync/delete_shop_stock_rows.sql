-- The apply's locked re-read of the SKUs whose demand moved replaces their rows in the run's copy
-- of the shop's stock (include/stocksync/sync/shop_mirror.py): first the rows taken before the lock.
DELETE FROM {stock} WHERE sku = ANY (%(skus)s)
