-- What a run's copy of the shop's catalog or stock is (include/stocksync/sync/shop_mirror.py):
-- 'r' a table filled through the shop port, 'v' a view reading the shop in place, no row: none yet.
SELECT c.relkind::text AS kind FROM pg_class c WHERE c.oid = to_regclass(%(name)s)
