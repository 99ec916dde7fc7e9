"""Storefront item -> shop SKU.

The storefront knows a product by its code and the options the shopper picked (size, colour...);
the shop sells SKUs. `stocksync.sku_map(code, options_key, sku)` maps one to the other, where
`options_key` is the canonical form of the options (`options_key`): the same choice always gives
the same key whatever the order, spacing or letter case the platform sends, and a value holding
`=` or `&` cannot be mistaken for another pair (names and values are percent-encoded).

Fallback: a code with no mapping row at all is itself the SKU (products without variants need no
mapping). A code that has mapping rows, but none for the options sent, is *unmapped*: answering the
stock of some other variant would promise what checkout may refuse, so the answer is unknown.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import quote

import psycopg

from include.stocksync.store.db import execute_file


def normalise(text: str) -> str:
    """Trimmed, inner whitespace collapsed to one space, case-folded."""
    return " ".join(text.split()).casefold()


def options_key(options: Iterable[tuple[str, str]] | Mapping[str, str]) -> str:
    """The canonical key of a set of options: `name=value` pairs, normalised (`normalise`),
    percent-encoded, sorted, joined with `&`. Options with an empty value (an option the shopper
    left blank) are left out; no options give ''. Two names equal after normalising: ValueError."""
    pairs = options.items() if isinstance(options, Mapping) else options
    out: dict[str, str] = {}
    for name, value in pairs:
        key, val = normalise(name), normalise(value)
        if not key:
            raise ValueError("an option without a name")
        if key in out:
            raise ValueError(f"option {name!r} given twice")
        if val:
            out[key] = val
    return "&".join(sorted(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in out.items()))


class PlatformVariant(Protocol):
    """A variant as a platform adapter reads it (shop/mysql_family.py: Variant)."""

    code: str
    options: dict[str, str]
    sku: str


def import_variants(conn: psycopg.Connection, variants: Iterable[PlatformVariant]) -> int:
    """Map each of the platform's variants (its parent's code and options -> the variant's SKU: a
    Magento configurable's child, a PrestaShop combination's reference), in the caller's
    transaction, replacing earlier mappings of the same code and options. Returns how many."""
    count = 0
    for variant in variants:
        upsert_mapping(conn, variant.code, variant.options, variant.sku)
        count += 1
    return count


def upsert_mapping(conn: psycopg.Connection, code: str, options: Mapping[str, str], sku: str) -> str:
    """Map a storefront item to a shop SKU (replacing an earlier mapping). Returns the options key."""
    key = options_key(options)
    execute_file(conn, "availability/upsert_sku_map", {"code": code.strip(), "options_key": key, "sku": sku})
    return key


# The resolution of one (code, options key): (sku, via) with via `map` or `code`; None: unmapped options.
Resolution = tuple[str, str] | None


# What the cached (code, options key) texts of one worker may hold in all, in characters: an entry's
# key can be 23,000 characters long (the largest form the protocol accepts: 31 options of odd
# characters), so a bound on entries alone would let 100,000 distinct items hold gigabytes.
RESOLUTION_CACHE_CHARS = 16 * 1024 * 1024


class ResolutionCache:
    """Per worker: the SKU each (code, options key) resolved to, for `seconds`, at most `size`
    entries and `max_chars` characters of codes and keys (least recently used dropped first). The
    SKU lives in stocksync's database and the number in the shop's: without it every lookup costs
    two round trips (measured: about half the answered requests per second of the one-join lookup
    on a saturated 2-core machine); with it, a repeated item costs the shop's one. A mapping
    changed in `sku_map` is used at most `seconds` later (0: no cache). Unmapped options are cached
    too (they are answers)."""

    def __init__(self, seconds: float, size: int, clock: Callable[[], float] = time.monotonic,
                 max_chars: int = RESOLUTION_CACHE_CHARS) -> None:
        self.seconds = seconds
        self.size = size
        self.max_chars = max_chars
        self.clock = clock
        self.chars = 0  # of the codes and keys held
        self._entries: OrderedDict[tuple[str, str], tuple[Resolution, float]] = OrderedDict()

    def get(self, code: str, key: str) -> tuple[bool, Resolution]:
        """(found, resolution); found is False when absent or expired."""
        entry = self._entries.get((code, key))
        if entry is None:
            return False, None
        if self.clock() >= entry[1]:
            del self._entries[(code, key)]
            self.chars -= len(code) + len(key)
            return False, None
        self._entries.move_to_end((code, key))
        return True, entry[0]

    def put(self, code: str, key: str, resolution: Resolution) -> None:
        if self.seconds <= 0:
            return
        size = len(code) + len(key)
        if size > self.max_chars:
            return
        if self._entries.pop((code, key), None) is not None:
            self.chars -= size
        self._entries[(code, key)] = (resolution, self.clock() + self.seconds)
        self.chars += size
        while len(self._entries) > self.size or self.chars > self.max_chars:
            (old_code, old_key), _ = self._entries.popitem(last=False)
            self.chars -= len(old_code) + len(old_key)
