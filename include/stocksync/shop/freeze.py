"""Checkout freeze (docs/architecture.md), through the shop port.

A freeze closes the shop's checkout (the reference shop: a row in `shop.checkout_freezes` that its
`place_order()` refuses on) until released or until it expires. A run releases only the freezes it
set itself, so a manual maintenance freeze survives any sync, and the expiry is a dead man's switch
for a run that dies without its teardown. Each call is the shop's own transaction, committed at
once (shoppers see a freeze as soon as it is set).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from include.stocksync.config.operations import MAX_FREEZE_TTL_SECONDS
from include.stocksync.shop.port import ActiveFreeze, Freeze, ShopPort
from include.stocksync.shop.registry import as_shop

# A connection instead of a port: the reference shop in that connection's database, on
# connections of its own (each call commits at once, whatever the caller's transaction does).
Shop = ShopPort | psycopg.Connection

# Where a freeze's message template takes the expected end (see `insert_checkout_freeze.sql`).
EXPECTED_END = "{expected_end}"


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


@dataclass(frozen=True)
class CheckoutState:
    """Checkout right now, as a gate outside the shop (the web server) needs it."""

    shopper_message: str | None  # the oldest active freeze's; None while checkout is open
    seconds_left: float  # until the last active freeze expires (0 while open)

    @property
    def frozen(self) -> bool:
        return self.shopper_message is not None


def checkout_state(shop: ShopPort, now: datetime | None = None) -> CheckoutState:
    """Whether any freeze closes checkout now (a sync's or a manual one), with the oldest active
    freeze's shopper message and the seconds until the last one expires. Reads only, through the
    port, so the web server's gate works on every platform whose adapter keeps the freeze (the
    reference shop's `checkout_freezes`, the MySQL platforms' `stocksync_checkout_freeze`). The
    one place the checkout gate reads the freeze from."""
    active = shop.active_freezes()  # unreleased and unexpired by the shop database's clock, oldest first
    if not active:
        return CheckoutState(shopper_message=None, seconds_left=0.0)
    now = now or datetime.now(UTC)
    last = max(freeze.expires_at for freeze in active)
    return CheckoutState(shopper_message=active[0].shopper_message,
                         seconds_left=max(0.0, (last - now).total_seconds()))
