"""The WMS stock contract, declared once.

Everything that depends on the shape of a WMS item is derived from `ITEM_FIELDS`: the raw
staging table's columns and its COPY column list (`raw_columns`), the columns validation
expects and the numeric twins it derives, the bounds it checks, and the HTTP and file
sources' parsing. Adding a field to the contract is one entry here (plus, if the shop must
use it, the outcome SQL). The contract is documented for WMS adapters in docs/wms-contract.md.

A snapshot also carries a header (`snapshot_id`, `snapshot_taken_at`, `orders_counted_until`);
its limits are below too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from psycopg import sql


@dataclass(frozen=True)
class ItemField:
    name: str
    kind: Literal["text", "integer"]
    description: str
    minimum: int | None = None
    # an integer field's upper bound: a number, or the name of the setting that holds it
    maximum: int | str | None = None
    max_length: int | None = None


SEQ_MAX = 2**62

ITEM_FIELDS: tuple[ItemField, ...] = (
    ItemField("sku", "text", "the shop's SKU", max_length=64),
    ItemField("on_hand", "integer", "units physically in the warehouse", 0, "max_quantity"),
    ItemField("non_usable", "integer", "units in damaged or quarantined locations", 0, "max_quantity"),
    ItemField("allocated", "integer", "units promised to orders the WMS already has", 0, "max_quantity"),
    ItemField("available", "integer", "on_hand - non_usable - allocated: what may be sold", 0, "max_quantity"),
    ItemField("seq", "integer", "increases whenever this SKU's WMS record changes", 1, SEQ_MAX),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in ITEM_FIELDS)
FIELD_SET = frozenset(FIELD_NAMES)
INTEGER_FIELDS: tuple[str, ...] = tuple(f.name for f in ITEM_FIELDS if f.kind == "integer")
TEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in ITEM_FIELDS if f.kind == "text")
SKU_MAX_LENGTH = next(f.max_length for f in ITEM_FIELDS if f.name == "sku")

# Bookkeeping columns of the raw table around the contract's fields: which batch (page, file
# chunk) a row came from, and the keys an item lacked or had beyond the contract.
RAW_PREFIX = ("page",)
RAW_SUFFIX = ("missing_keys", "extra_keys")
RAW_COPY_COLUMNS: tuple[str, ...] = (*RAW_PREFIX, *FIELD_NAMES, *RAW_SUFFIX)

# The header every snapshot carries, and the bounds on what a WMS may send.
SNAPSHOT_ID_MAX_LENGTH = 200
# What pages of one snapshot (one snapshot_id) stamped with different times mean (config
# snapshot_page_times): "earliest" takes them as a live walk, each page stamped when it was read,
# and keeps the earliest time of the walk as its snapshot time and watermark; "refuse" refuses them.
PAGE_TIMES = ("earliest", "refuse")
CURSOR_MAX_LENGTH = 4096
# Raw text longer than this is cut (and marked) before staging; it fails the length check anyway.
RAW_TEXT_MAX_LENGTH = 1024


def raw_columns() -> sql.Composed:
    """The raw table's COPY column list."""
    return sql.SQL(", ").join(sql.Identifier(c) for c in RAW_COPY_COLUMNS)


def raw_column_definitions() -> sql.Composed:
    """The raw table's contract columns: every field as text, exactly as received."""
    return sql.SQL(",\n    ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in (*FIELD_NAMES, *RAW_SUFFIX))
