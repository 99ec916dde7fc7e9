-- The shop's grants: what each stocksync role may do in the shop's schema ({shop}, the configured
-- STOCKSYNC_SHOP_SCHEMA). Run by the shop database's administrator after create_roles.sql;
-- idempotent. Written for the reference shop schema (include/sql/shop/create_schema.sql): a shop
-- with its own adapter (docs/shop-adapter.md) grants the same on the tables its statements use.
-- Nothing here touches stocksync's own schema (stocksync_grants.sql), so the two can live in
-- different databases.

GRANT USAGE ON SCHEMA {shop} TO stocksync_sync, stocksync_availability;

-- The availability service reads the sellable stock (select_sellable_stock: products + stock) and
-- the active checkout freezes (select_active_freeze). Nothing else; no write of any kind.
GRANT SELECT ON {shop}.products, {shop}.stock, {shop}.checkout_freezes TO stocksync_availability;

-- The sync DAGs (nightly, push, intraday, order push):
--   read the catalog, stock, orders in the window and carts (select_* statements);
--   write stock (update_stock upserts, update_stock_live; lock_stock* lock it, which needs UPDATE);
--   close and reopen checkout (insert_checkout_freeze, update_checkout_freeze: released_at only);
--   mark orders the WMS acknowledged (update_order_acknowledged: wms_acknowledged_at only).
GRANT SELECT ON {shop}.products, {shop}.stock, {shop}.orders, {shop}.order_lines, {shop}.carts,
    {shop}.cart_lines, {shop}.checkout_freezes TO stocksync_sync;
GRANT INSERT, UPDATE ON {shop}.stock TO stocksync_sync;
GRANT INSERT ON {shop}.checkout_freezes TO stocksync_sync;
GRANT UPDATE (released_at) ON {shop}.checkout_freezes TO stocksync_sync;
GRANT USAGE ON SEQUENCE {shop}.checkout_freezes_freeze_id_seq TO stocksync_sync;
GRANT UPDATE (wms_acknowledged_at) ON {shop}.orders TO stocksync_sync;
