-- stocksync's own schema: stocksync_sync owns it and everything in it (the DAGs create and drop
-- their staging tables there, and run the migrations: `python -m include.stocksync db upgrade`
-- with the stocksync_shop connection as stocksync_sync); the availability service maps codes to
-- SKUs and writes its counters. Run by an administrator after create_roles.sql and after the
-- migrations; idempotent, and safe to run again after an upgrade that an administrator applied
-- (it hands what that upgrade created back to stocksync_sync).

CREATE SCHEMA IF NOT EXISTS stocksync AUTHORIZATION stocksync_sync;
ALTER SCHEMA stocksync OWNER TO stocksync_sync;

DO $owner$
DECLARE
    item record;
BEGIN
    -- tables, views and standalone sequences (a serial column's sequence follows its table)
    FOR item IN
        SELECT c.oid::regclass AS name, c.relkind
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'stocksync'
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d
                                                 WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
           AND pg_get_userbyid(c.relowner) <> 'stocksync_sync'
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO stocksync_sync',
                       CASE item.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                         WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, item.name);
    END LOOP;
    FOR item IN
        SELECT p.oid::regprocedure AS name
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'stocksync' AND pg_get_userbyid(p.proowner) <> 'stocksync_sync'
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO stocksync_sync', item.name);
    END LOOP;
END
$owner$;

-- The availability service: look up a code's SKU (select_item_sku reads sku_map) and
-- write its counters (insert_stats). Read-only mode writes nothing else.
GRANT USAGE ON SCHEMA stocksync TO stocksync_availability;
GRANT SELECT ON stocksync.sku_map TO stocksync_availability;
GRANT INSERT ON stocksync.availability_stats TO stocksync_availability;
GRANT USAGE ON SEQUENCE stocksync.availability_stats_stats_id_seq TO stocksync_availability;
