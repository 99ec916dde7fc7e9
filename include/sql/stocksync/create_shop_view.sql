-- A run's in-place read of the shop's catalog or stock when the shop is stocksync's own database,
-- read with stocksync's own role (include/stocksync/sync/shop_mirror.py): no copy. Selecting from
-- a subquery keeps the view read-only (PostgreSQL never writes through it to the shop's table); the
-- planner flattens it, so joins use the shop's own SKU index. Dropped by the run's teardown.
CREATE VIEW {view} AS SELECT {columns} FROM ({source}) shop_rows
