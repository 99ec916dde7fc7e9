"""Checkout freeze (docs/architecture.md).

A freeze is a row in `shop.checkout_freezes`; the shop's `place_order()` refuses while an
unreleased, unexpired row exists. A run releases only the rows it set itself, so a manual
maintenance freeze survives any sync, and the expiry is a dead man's switch for a run
that dies without its teardown.
"""

from __future__ import annotations

import psycopg

from include.stocksync.shop.port import Freeze
from include.stocksync.store.db import execute_file

# Where a freeze's message template takes the expected end (see `insert_checkout_freeze.sql`).
EXPECTED_END = "{expected_end}"
# No run may close checkout for longer than this, whatever the config or a run's parameters say.
MAX_FREEZE_TTL_SECONDS = 4 * 3600


def set_freeze(conn: psycopg.Connection, *, set_by: str, reason: str, message: str,
               ttl_seconds: float) -> Freeze:
    """Close checkout until released or until `ttl_seconds` pass. `message` may hold
    `{expected_end}`, filled in from the freeze's real expiry. The caller commits."""
    if not 0 < ttl_seconds <= MAX_FREEZE_TTL_SECONDS:
        raise ValueError(f"a freeze lasts 0..{MAX_FREEZE_TTL_SECONDS} s; got {ttl_seconds}")
    row = execute_file(conn, "shop/insert_checkout_freeze", {
        "reason": reason, "message": message, "placeholder": EXPECTED_END, "set_by": set_by,
        "ttl_seconds": ttl_seconds,
    }).fetchone()
    assert row is not None
    return Freeze(*row)


def release_freezes(conn: psycopg.Connection, *, set_by: str) -> int:
    """Release every freeze `set_by` holds (and only those). Returns how many. The caller commits."""
    released = execute_file(conn, "shop/update_checkout_freeze", {"set_by": set_by}).fetchall()
    return len(released)


def freeze_seconds(conn: psycopg.Connection, *, set_by: str) -> float:
    """Seconds checkout was closed by `set_by`'s freezes."""
    row = execute_file(conn, "shop/select_checkout_freeze", {"set_by": set_by}).fetchone()
    return float(row[0]) if row else 0.0


def active_freezes(conn: psycopg.Connection, *, set_by: str | None = None) -> list[tuple]:
    """Freezes that close checkout right now (all of them, or only `set_by`'s)."""
    rows = execute_file(conn, "shop/select_active_freeze", {"set_by": set_by}).fetchall()
    return rows
