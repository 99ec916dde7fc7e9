"""stocksync's database roles with the least grants, one per component (include/sql/roles/,
docs/operations.md "Database roles").

`apply_roles(admin_dsn, ...)` runs the scripts in their order as an administrator of the shop
database: the roles (`create_roles`), the shop's grants (`shop_grants`, on the configured shop
schema), stocksync's schema (`stocksync_grants`: stocksync_sync owns it, the availability service
reads `sku_map` and writes its counters), and, only for a live-mode availability service,
`availability_live_grants`. Each script is idempotent, so this runs again after every upgrade.
A password, when given, is set as a bound literal (never formatted into the statement).
"""

from __future__ import annotations

from psycopg import sql

from include.stocksync.store.db import connect, query, shop_schema

SYNC_ROLE = "stocksync_sync"
AVAILABILITY_ROLE = "stocksync_availability"
ROLES = (SYNC_ROLE, AVAILABILITY_ROLE)
SCRIPTS = ("roles/create_roles", "roles/shop_grants", "roles/stocksync_grants")
LIVE_SCRIPT = "roles/availability_live_grants"


def apply_roles(admin_dsn: str, passwords: dict[str, str] | None = None, *, live_availability: bool = False) -> None:
    """Create the roles and grant them what their component needs; set the passwords given
    (role name -> password; a role left out keeps its password)."""
    unknown = sorted(set(passwords or {}) - set(ROLES))
    if unknown:
        raise ValueError(f"no stocksync role named {unknown}: the roles are {list(ROLES)}")
    scripts = (*SCRIPTS, LIVE_SCRIPT) if live_availability else SCRIPTS
    with connect(admin_dsn) as conn:
        for name in scripts:
            conn.execute(query(name, shop=shop_schema()))
        for role, password in (passwords or {}).items():
            if not password:
                raise ValueError(f"the password of {role} is empty: set it or leave the role out")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.commit()
