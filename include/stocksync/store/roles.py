"""stocksync's database roles with the least grants, one per component (include/sql/roles/,
docs/operations.md "Database roles").

`apply_roles(admin_dsn, ..., stocksync_admin_dsn=...)` runs the scripts in their order as an
administrator: in the shop's database the roles (`create_roles`) and the shop's grants
(`shop_grants`, on the configured shop schema); in stocksync's database the roles again (roles are
per cluster: stocksync's may be another) and stocksync's schema (`stocksync_grants`: stocksync_sync
owns it, the availability service reads `sku_map` and writes its counters); only for a live-mode
availability service, the two parts of its live grants, each in its database. Without
`stocksync_admin_dsn`, stocksync's schema is in the shop's database (the single-database layout).
Each script is idempotent, so this runs again after every upgrade. A password, when given, is set
as a bound literal (never formatted into the statement), in each cluster.
"""

from __future__ import annotations

from psycopg import sql

from include.stocksync.store.db import connect, query, shop_schema

SYNC_ROLE = "stocksync_sync"
AVAILABILITY_ROLE = "stocksync_availability"
ROLES = (SYNC_ROLE, AVAILABILITY_ROLE)
SHOP_SCRIPTS = ("roles/create_roles", "roles/shop_grants")
STOCKSYNC_SCRIPTS = ("roles/create_roles", "roles/stocksync_grants")
LIVE_SHOP_SCRIPT = "roles/availability_live_shop_grants"
LIVE_STOCKSYNC_SCRIPT = "roles/availability_live_stocksync_grants"


def apply_roles(admin_dsn: str, passwords: dict[str, str] | None = None, *, live_availability: bool = False,
                stocksync_admin_dsn: str | None = None) -> None:
    """Create the roles and grant them what their component needs; set the passwords given
    (role name -> password; a role left out keeps its password). `admin_dsn`: the shop's database;
    `stocksync_admin_dsn`: stocksync's own (None: the shop's database holds it too)."""
    unknown = sorted(set(passwords or {}) - set(ROLES))
    if unknown:
        raise ValueError(f"no stocksync role named {unknown}: the roles are {list(ROLES)}")
    empty = sorted(role for role, password in (passwords or {}).items() if not password)
    if empty:
        raise ValueError(f"the password of {empty[0]} is empty: set it or leave the role out")
    shop_scripts = (*SHOP_SCRIPTS, LIVE_SHOP_SCRIPT) if live_availability else SHOP_SCRIPTS
    stocksync_scripts = (*STOCKSYNC_SCRIPTS, LIVE_STOCKSYNC_SCRIPT) if live_availability else STOCKSYNC_SCRIPTS
    if stocksync_admin_dsn is None or stocksync_admin_dsn == admin_dsn:
        _run(admin_dsn, tuple(dict.fromkeys((*shop_scripts, *stocksync_scripts))), passwords)
        return
    _run(admin_dsn, shop_scripts, passwords)
    _run(stocksync_admin_dsn, stocksync_scripts, passwords)


def _run(admin_dsn: str, scripts: tuple[str, ...], passwords: dict[str, str] | None) -> None:
    with connect(admin_dsn) as conn:
        for name in scripts:
            conn.execute(query(name, shop=shop_schema()))
        for role, password in (passwords or {}).items():
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.commit()
