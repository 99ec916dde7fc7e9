"""The seam between stocksync and a warehouse system: a `WmsSource` yields one snapshot as
batches of raw rows (the HTTP API's pages, a dropped file's chunks), each batch carrying the
snapshot header it claims to belong to. `include/stocksync/extract.py` stages any source the
same way and applies the same checks: header sanity (time stamps, one snapshot per walk),
bounded walks, text made safe before it reaches PostgreSQL.

Nothing a source yields is trusted: values are staged as text and judged by validation.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import chain
from operator import itemgetter
from typing import Any, Protocol

import orjson

from include.stocksync.contract import (
    CURSOR_MAX_LENGTH,
    FIELD_NAMES,
    FIELD_SET,
    RAW_PREFIX,
    RAW_SUFFIX,
    RAW_TEXT_MAX_LENGTH,
    SNAPSHOT_ID_MAX_LENGTH,
    TEXT_FIELDS,
)
from include.stocksync.errors import PermanentError, TransientError


class WmsError(Exception):
    """The WMS could not be read; the message says why and what to do."""


class WmsContractError(WmsError, PermanentError):
    """What the WMS sent breaks the contract or a bound: retrying would get the same answer."""


class WmsUnavailable(WmsError, TransientError):
    """The WMS did not answer usefully this time (connection, timeout, 429, 5xx, expired cursor)."""


@dataclass(frozen=True)
class SnapshotHeader:
    """What a batch claims about its snapshot, as received (text)."""

    snapshot_id: Any
    snapshot_taken_at: Any
    orders_counted_until: Any


@dataclass(frozen=True)
class Batch:
    header: SnapshotHeader
    rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]  # COPY rows: contract.RAW_COPY_COLUMNS
    where: str  # "page 3 (cursor 'abc')": named in every error about this batch
    count: int | None = None  # rows in the batch, when known before reading it
    # issue 17: the same rows as COPY text, already rendered (`copy_text`); when set, `count` is too
    # and extraction sends it as is instead of the rows
    text: bytes | None = None


class WmsSource(Protocol):
    """One snapshot of the WMS's stock, batch by batch, within `bounds`."""

    def batches(self, bounds: WalkBounds) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class SnapshotLimits:
    """How far a snapshot's time stamps may be from our clock and from each other."""

    clock_skew: timedelta = timedelta(seconds=120)
    max_age: timedelta = timedelta(hours=6)


@dataclass
class WalkBounds:
    """A walk must end: at most `max_batches` batches, before `deadline` (time.monotonic())."""

    max_batches: int
    deadline: float
    max_batch_bytes: int = 64 * 1024 * 1024
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_catalog(cls, enabled_catalog: int, page_size: int, *, margin: float, extra: int,
                    seconds: float, max_batch_bytes: int = 64 * 1024 * 1024) -> WalkBounds:
        """A page limit from the enabled catalog (a snapshot covers it within the row-count band)."""
        pages = math.ceil(enabled_catalog * (1 + margin) / page_size) + extra
        return cls(max(pages, 1), time.monotonic() + seconds, max_batch_bytes)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, batch_no: int, where: str) -> None:
        if batch_no >= self.max_batches:
            raise WmsContractError(
                f"the WMS walk does not end: {where} would be batch {batch_no + 1}, more than the "
                f"{self.max_batches} the enabled catalog can fill (config walk_page_margin, walk_extra_pages)")
        if self.remaining() <= 0:
            raise WmsContractError(
                f"the WMS walk passed its deadline of {self.deadline - self.started:.0f} s at {where} "
                "(config extract_deadline_seconds)")


def parse_timestamp(value: Any, field_name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise WmsContractError(f"WMS field {field_name!r} must be an ISO-8601 text time stamp; got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise WmsContractError(f"WMS field {field_name!r} is not an ISO-8601 timestamp: {_show(value)}") from exc
    if parsed.tzinfo is None:
        raise WmsContractError(f"WMS field {field_name!r} has no timezone: {_show(value)}")
    return parsed


@dataclass(frozen=True)
class CheckedHeader:
    snapshot_id: str
    snapshot_taken_at: datetime
    orders_counted_until: datetime | None


def check_header(header: SnapshotHeader, limits: SnapshotLimits, now: datetime | None = None) -> CheckedHeader:
    """Refuse a snapshot whose header could make us oversell: a watermark after the snapshot or
    after now treats orders the WMS never saw as counted (and raises stock); a snapshot from the
    future or older than `max_age` is not today's truth. Each refusal names field, value, limit."""
    now = now or datetime.now(timezone.utc)
    snapshot_id = header.snapshot_id
    if not isinstance(snapshot_id, str) or not snapshot_id or len(snapshot_id) > SNAPSHOT_ID_MAX_LENGTH \
            or not snapshot_id.isprintable():
        raise WmsContractError(f"WMS field 'snapshot_id' must be printable text of 1..{SNAPSHOT_ID_MAX_LENGTH} "
                               f"characters; got {_show(snapshot_id)}")
    taken_at = parse_timestamp(header.snapshot_taken_at, "snapshot_taken_at")
    if taken_at is None:
        raise WmsContractError("WMS field 'snapshot_taken_at' is missing: a snapshot must say when it was taken")
    counted = parse_timestamp(header.orders_counted_until, "orders_counted_until")
    skew = limits.clock_skew
    if taken_at > now + skew:
        raise WmsContractError(
            f"WMS snapshot_taken_at {taken_at.isoformat()} is in the future: later than now "
            f"({now.isoformat()}) plus the allowed clock skew of {skew.total_seconds():.0f} s "
            "(config clock_skew_seconds)")
    if now - taken_at > limits.max_age:
        raise WmsContractError(
            f"WMS snapshot_taken_at {taken_at.isoformat()} is older than the maximum snapshot age of "
            f"{limits.max_age.total_seconds():.0f} s (config max_snapshot_age_seconds; now {now.isoformat()})")
    if counted is not None:
        if counted > taken_at + skew:
            raise WmsContractError(
                f"WMS orders_counted_until {counted.isoformat()} is after snapshot_taken_at {taken_at.isoformat()} "
                f"plus the allowed clock skew of {skew.total_seconds():.0f} s: orders the snapshot cannot have seen "
                "would count as counted and raise stock")
        if counted > now + skew:
            raise WmsContractError(
                f"WMS orders_counted_until {counted.isoformat()} is in the future: later than now "
                f"({now.isoformat()}) plus the allowed clock skew of {skew.total_seconds():.0f} s")
    return CheckedHeader(snapshot_id, taken_at, counted)


def same_snapshot(first: SnapshotHeader, other: SnapshotHeader, where: str) -> None:
    """Every batch of one walk must claim the same snapshot: a walk that mixes snapshots
    (the WMS re-snapshotted mid-walk, a cursor from another walk) is refused."""
    for name in ("snapshot_id", "snapshot_taken_at", "orders_counted_until"):
        a, b = getattr(first, name), getattr(other, name)
        if a != b:
            raise WmsContractError(f"the WMS walk mixes snapshots: {where} has {name} {_show(b)}, the first "
                                   f"page had {_show(a)}; pages of one walk must belong to one snapshot")


def check_cursor(cursor: Any, where: str) -> str | None:
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX_LENGTH or not cursor.isprintable():
        raise WmsContractError(f"{where}: next_cursor must be printable text of at most {CURSOR_MAX_LENGTH} "
                               f"characters or null; got {_show(cursor)}")
    return cursor


# ----------------------------------------------------------------------------- safe text

def safe_text(value: str) -> str:
    """`value` as text PostgreSQL accepts and a page can show: NUL and lone surrogates (which a
    text column or UTF-8 cannot hold) become visible `\\x00`/`\\udxxx` escapes, and text beyond
    `RAW_TEXT_MAX_LENGTH` is cut with a marker. Either way the value no longer matches the SKU
    format, so validation reports it; other odd characters stay as they are for validation to
    judge and pages to show escaped."""
    if value.isascii():
        if "\x00" in value:
            value = value.replace("\x00", "\\x00")
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        if "\x00" in value:
            value = value.replace("\x00", "\\x00")
    if len(value) > RAW_TEXT_MAX_LENGTH:
        value = f"{value[:RAW_TEXT_MAX_LENGTH]}…[{len(value) - RAW_TEXT_MAX_LENGTH} more characters]"
    return value


def json_text(value: Any) -> str | None:
    """A JSON value as the raw table's text. Integers stay digits; anything else keeps its JSON
    form (a string `"5"` stays quoted), so the integer check names it as the type error it is."""
    if value is None:
        return None
    if type(value) is int:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return safe_text(orjson.dumps(value).decode() if _json_encodable(value) else repr(value))
    try:
        return safe_text(orjson.dumps(value).decode())
    except (TypeError, orjson.JSONEncodeError):
        return safe_text(repr(value))


def _json_encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def item_rows(batch_no: int, items: list[Any]) -> Iterator[tuple[Any, ...]]:
    """COPY rows for a batch of JSON items. Well-formed items take a fast path; odd ones are
    described (missing and extra keys, every value as text) for validation to judge."""
    ints = FIELD_NAMES[1:]
    for item in items:
        if type(item) is dict and item.keys() == FIELD_SET:
            sku = item["sku"]
            values = [item[f] for f in ints]
            if type(sku) is str and all(type(v) is int for v in values):
                if not sku.isascii() or "\x00" in sku or len(sku) > RAW_TEXT_MAX_LENGTH:
                    sku = safe_text(sku)
                yield (batch_no, sku, *values, None, None)
                continue
        if not isinstance(item, dict):
            yield (batch_no, *(None for _ in FIELD_NAMES), ",".join(FIELD_NAMES), f"<{type(item).__name__}>")
            continue
        missing = ",".join(f for f in FIELD_NAMES if f not in item) or None
        extra_keys = sorted(safe_text(str(k)).replace(",", "\\,") for k in item if k not in FIELD_SET)
        extra = safe_text(",".join(extra_keys)) if extra_keys else None
        yield (batch_no, *(_field_text(f, item.get(f)) for f in FIELD_NAMES), missing, extra)


_FIELD_VALUES = itemgetter(*FIELD_NAMES)
_FIRST = itemgetter(0)
# The one-piece rendering covers the contract as it is declared: one text field, the SKU, first,
# integers after it, after the batch number. A contract otherwise sends every batch row by row.
ONE_PIECE = TEXT_FIELDS == ("sku",) and FIELD_NAMES[0] == "sku" and RAW_PREFIX == ("page",)
_ROW_FORMAT = "\t".join(("{batch}", *("%s" if f in TEXT_FIELDS else "%d" for f in FIELD_NAMES),
                         *("\\N" for _ in RAW_SUFFIX))) + "\n"


def copy_text(batch_no: int, items: list[Any]) -> bytes | None:
    """The COPY text (contract.RAW_COPY_COLUMNS, text format) of a batch whose every item takes
    `item_rows`' fast path as is: exactly the contract's keys, a text SKU that needs neither
    `safe_text` nor COPY escaping (printable ASCII, no backslash, not too long) and integer
    quantities. The bytes `write_row` would send for `item_rows`' rows, built in a few C-level
    passes over the batch instead of one Python step per row (issue 17). None when any item is
    otherwise: that batch goes row by row, through `item_rows`."""
    if not items:
        return b""
    if not ONE_PIECE:
        return None
    count = len(items)
    try:
        if set(map(len, items)) != {len(FIELD_NAMES)} or set(map(type, items)) != {dict}:
            return None
        values = list(map(_FIELD_VALUES, items))  # KeyError: another key
    except (KeyError, TypeError):
        return None
    flat = tuple(chain.from_iterable(values))
    skus = list(map(_FIRST, values))
    # every SKU a str and so, of six values per row, the five others ints (bool is no int here)
    if set(map(type, skus)) != {str} or Counter(map(type, flat)) != {str: count, int: len(flat) - count}:
        return None
    return render_copy_text(batch_no, skus, flat)


def render_copy_text(batch_no: int, skus: list[str], flat: tuple[Any, ...]) -> bytes | None:
    """`copy_text` of rows already known to be text SKUs and integer quantities: `flat` holds each
    row's contract fields in order. None when a SKU would need `safe_text` or COPY escaping."""
    if not skus:  # an empty page (an empty snapshot is a validation matter, not a crash here)
        return b""
    if not ONE_PIECE:
        return None
    joined = "".join(skus)
    if not (joined.isascii() and joined.isprintable()) or "\\" in joined or max(map(len, skus)) > RAW_TEXT_MAX_LENGTH:
        return None
    row = _ROW_FORMAT.replace("{batch}", str(int(batch_no)))
    return ((row * len(skus)) % flat).encode("ascii")


def _field_text(name: str, value: Any) -> str | None:
    if name in TEXT_FIELDS and value is not None:
        if isinstance(value, str):
            return safe_text(value)
        # a number or object where text belongs: kept visibly typed, so it cannot pass as a SKU
        return safe_text(f"<JSON {type(value).__name__} {json_text(value)}>")
    return json_text(value)


def _show(value: Any, limit: int = 120) -> str:
    """A received value for an error message: repr (quotes, escapes), cut."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"
