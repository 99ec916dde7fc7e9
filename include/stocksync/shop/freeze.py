"""Checkout freeze (docs/architecture.md), through the shop port.

A freeze closes the shop's checkout (the reference shop: a row in `shop.checkout_freezes` that its
`place_order()` refuses on) until released or until it expires. A run releases only the freezes it
set itself, so a manual maintenance freeze survives any sync, and the expiry is a dead man's switch
for a run that dies without its teardown. Each call is the shop's own transaction, committed at
once (shoppers see a freeze as soon as it is set).
"""

from __future__ import annotations

import psycopg

from include.stocksync.shop.port import ActiveFreeze, Freeze, ShopPort
from include.stocksync.shop.registry import as_shop

# A connection instead of a port: the reference shop in that connection's database, on
# connections of its own (each call commits at once, whatever the caller's transaction does).
Shop = ShopPort | psycopg.Connection

# Where a freeze's message template takes the expected end (see `insert_checkout_freeze.sql`).
EXPECTED_END = "{expected_end}"
# No run may close checkout for longer than this, whatever the config or a run's parameters say.
MAX_FREEZE_TTL_SECONDS = 4 * 3600


def set_freeze(shop: Shop, *, set_by: str, reason: str, message: str, ttl_seconds: float) -> Freeze:
    """Close checkout until released or until `ttl_seconds` pass. `message` may hold
    `{expected_end}`, filled in from the freeze's real expiry."""
    if not 0 < ttl_seconds <= MAX_FREEZE_TTL_SECONDS:
        raise ValueError(f"a freeze lasts 0..{MAX_FREEZE_TTL_SECONDS} s; got {ttl_seconds}")
    return as_shop(shop).set_freeze(set_by=set_by, reason=reason, message=message, placeholder=EXPECTED_END,
                           ttl_seconds=ttl_seconds)


def release_freezes(shop: Shop, *, set_by: str) -> int:
    """Release every freeze `set_by` holds (and only those). Returns how many."""
    return as_shop(shop).release_freezes(set_by=set_by)


def freeze_seconds(shop: Shop, *, set_by: str) -> float:
    """Seconds checkout was closed by `set_by`'s freezes."""
    return as_shop(shop).freeze_seconds(set_by=set_by)


def active_freezes(shop: Shop, *, set_by: str | None = None) -> list[ActiveFreeze]:
    """Freezes that close checkout right now (all of them, or only `set_by`'s)."""
    return as_shop(shop).active_freezes(set_by=set_by)
