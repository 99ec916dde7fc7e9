-- stocksync's database roles, one per component, each with only what it needs
-- (docs/operations.md "Database roles"). Run once per cluster by an administrator (a superuser, or
-- a role with CREATEROLE that will also be a member of both roles); idempotent. The roles get no
-- password here: set one per role afterwards (`\password stocksync_sync` in psql, or the
-- compose init, which sets SYNC_DB_PASSWORD / AVAILABILITY_DB_PASSWORD).
--   stocksync_sync          the Airflow DAGs (the stocksync_shop connection): owns stocksync's
--                           schema; in the shop, exactly the statements of include/sql/shop/
--   stocksync_availability  the storefront's availability service: reads stock, catalog and
--                           freezes; writes nothing in the shop
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stocksync_sync') THEN
        CREATE ROLE stocksync_sync LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stocksync_availability') THEN
        CREATE ROLE stocksync_availability LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$roles$;
