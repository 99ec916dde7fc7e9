"""The seam between stocksync and a warehouse system: a `WmsSource` yields one snapshot as
batches of raw rows (the HTTP API's pages, a dropped file's chunks), each batch carrying the
snapshot header it claims to belong to. `include/stocksync/sync/extract.py` stages any source the
same way and applies the same checks: header sanity (time stamps, one snapshot per walk),
bounded walks, text made safe before it reaches PostgreSQL.

Nothing a source yields is trusted: values are staged as text and judged by validation.
"""

from __future__ import annotations

import hashlib
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

from include.stocksync.domain.contract import (
    CURSOR_MAX_LENGTH,
    FIELD_NAMES,
    FIELD_SET,
    RAW_PREFIX,
    RAW_SUFFIX,
    RAW_TEXT_MAX_LENGTH,
    SNAPSHOT_ID_MAX_LENGTH,
    TEXT_FIELDS,
)

# the one set of WMS error types (wms/errors.py), named here too for the sources' callers
from include.stocksync.wms.errors import WmsContractError as WmsContractError
from include.stocksync.wms.errors import WmsError as WmsError
from include.stocksync.wms.errors import WmsUnavailable as WmsUnavailable


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
    # the same rows as COPY text, already rendered (`copy_text`); when set, `count` is too
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
    page_times: str = "earliest"  # one of PAGE_TIMES


# Bytes a walk may carry per row it may hold, on average: a stock item is about 100 bytes of JSON
# (a CSV row about 50); 4 KiB each leaves room for long, odd or extra-keyed items that validation
# must see, and still ends a walk that pads its pages or its file (blank lines, whitespace).
WALK_BYTES_PER_ROW = 4096


@dataclass
class WalkBounds:
    """A walk must end, bounded by what actually arrives, before `deadline` (time.monotonic()).

    `max_batches` is the page bound at the page size asked for (`page_size`). A source serving
    smaller pages than asked (many APIs cap their page size) gets the same bound at the page size
    it actually serves: `ceil(catalog_rows / smallest page) + extra` pages. Whatever the pages,
    the rows and bytes that arrive are bounded by the catalog too: at most `max_batches` full
    pages of rows (`max_rows`), `WALK_BYTES_PER_ROW` bytes per such row (`max_bytes`), and for a
    file as many lines as rows, blank ones included (`max_lines`). A walk with neither
    `page_size` nor `catalog_rows` (a fixed bound) counts pages only."""

    max_batches: int
    deadline: float
    max_batch_bytes: int = 64 * 1024 * 1024
    started: float = field(default_factory=time.monotonic)
    page_size: int | None = None          # rows asked for per batch
    catalog_rows: float | None = None     # rows the enabled catalog may send: enabled x (1 + margin)
    extra: int = 0                        # pages beyond what the catalog fills (config walk_extra_pages)
    rows: int = 0                         # what arrived so far
    bytes: int = 0
    lines: int = 0
    smallest_page: int | None = None      # the fewest rows a page (that had a next one) carried

    @classmethod
    def for_catalog(cls, enabled_catalog: int, page_size: int, *, margin: float, extra: int,
                    seconds: float, max_batch_bytes: int = 64 * 1024 * 1024) -> WalkBounds:
        """A page limit from the enabled catalog (a snapshot covers it within the row-count band)."""
        catalog_rows = enabled_catalog * (1 + margin)
        pages = math.ceil(catalog_rows / page_size) + extra
        return cls(max(pages, 1), time.monotonic() + seconds, max_batch_bytes, page_size=page_size,
                   catalog_rows=catalog_rows, extra=extra)

    @property
    def max_rows(self) -> int | None:
        return None if self.page_size is None else self.max_batches * self.page_size

    @property
    def max_bytes(self) -> int | None:
        rows = self.max_rows
        return None if rows is None else rows * WALK_BYTES_PER_ROW

    @property
    def max_lines(self) -> int | None:
        rows = self.max_rows
        return None if rows is None else rows + 1  # a CSV file's header line

    def page_limit(self) -> int:
        """Pages allowed: at the page size asked for, or at the smaller one the source serves."""
        served = self.smallest_page
        if self.page_size is None or self.catalog_rows is None or served is None or served >= self.page_size:
            return self.max_batches
        return max(self.max_batches, math.ceil(self.catalog_rows / max(served, 1)) + self.extra)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self, batch_no: int, where: str) -> None:
        """Before asking for batch `batch_no` (0-based): within the page bound and the deadline."""
        limit = self.page_limit()
        if batch_no >= limit:
            served = "" if limit == self.max_batches else \
                f" at the {self.smallest_page} rows a page the WMS serves (asked for {self.page_size})"
            raise WmsContractError(
                f"the WMS walk does not end: {where} would be batch {batch_no + 1}, more than the "
                f"{limit} the enabled catalog can fill{served} (config walk_page_margin, walk_extra_pages)")
        self.check_deadline(where)

    def check_deadline(self, where: str) -> None:
        if self.remaining() <= 0:
            raise WmsContractError(
                f"the WMS walk passed its deadline of {self.deadline - self.started:.0f} s at {where} "
                "(config extract_deadline_seconds)")

    def arrived(self, rows: int, size: int, where: str, *, last: bool = False) -> None:
        """A batch of `rows` rows and `size` bytes arrived (`last`: no batch follows it); refuses a
        walk that has brought more rows or bytes than the enabled catalog can fill."""
        self.rows += rows
        if not last and (self.smallest_page is None or rows < self.smallest_page):
            self.smallest_page = rows
        max_rows = self.max_rows
        if max_rows is not None and self.rows > max_rows:
            raise WmsContractError(
                f"the WMS walk does not end: {self.rows} rows arrived by {where}, more than the {max_rows} the "
                f"enabled catalog can fill ({self.max_batches} pages of {self.page_size}; config walk_page_margin, "
                "walk_extra_pages)")
        self.read(size, 0, where)

    def read(self, size: int, lines: int, where: str) -> None:
        """`size` more bytes (and `lines` more lines, blank ones included) were read: refuses a walk
        past its byte or line bound or its deadline while it is being read, not after."""
        self.bytes += size
        self.lines += lines
        max_bytes, max_lines = self.max_bytes, self.max_lines
        if max_bytes is not None and self.bytes > max_bytes:
            raise WmsContractError(
                f"the WMS walk does not end: {self.bytes} bytes arrived by {where}, more than the {max_bytes} the "
                f"enabled catalog can fill ({self.max_rows} rows of at most {WALK_BYTES_PER_ROW} bytes on average; "
                "config walk_page_margin, walk_extra_pages)")
        if max_lines is not None and self.lines > max_lines:
            raise WmsContractError(
                f"the WMS walk does not end: {self.lines} lines (blank ones included) arrived by {where}, more than "
                f"the {max_lines} the enabled catalog can fill ({self.max_rows} rows and a header; config "
                "walk_page_margin, walk_extra_pages)")
        self.check_deadline(where)


# Every time the WMS sends is refused outside these bounds (UTC): one before 2000 is an unset clock or
# field (the epoch, year 1), one from 3000 on a typo or a "never". Either would be stored, compared
# and added to (a time whose offset puts it before year 1 in UTC cannot even be stored).
EARLIEST_WMS_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST_WMS_TIME = datetime(3000, 1, 1, tzinfo=timezone.utc)


def parse_timestamp(value: Any, field_name: str) -> datetime | None:
    """The WMS's time stamp `value`: ISO-8601 text with a time zone, from 2000 to 2999 (UTC); None
    for a missing one. Anything else is a permanent contract error naming the field and value."""
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
    try:
        plausible = EARLIEST_WMS_TIME <= parsed.astimezone(timezone.utc) < LATEST_WMS_TIME
    except OverflowError:  # its offset takes it past year 1 or 9999 in UTC
        plausible = False
    if not plausible:
        raise WmsContractError(f"WMS field {field_name!r} is not a plausible time: {_show(value)} is outside "
                               f"{EARLIEST_WMS_TIME.year} to {LATEST_WMS_TIME.year - 1} (UTC)")
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
    check_watermark(counted, taken_at, limits, now)
    return CheckedHeader(snapshot_id, taken_at, counted)


def check_watermark(counted: datetime | None, taken_at: datetime | None, limits: SnapshotLimits,
                    now: datetime | None = None) -> None:
    """Refuse an `orders_counted_until` after the snapshot's time (`taken_at`, when there is one) or
    after now, beyond the clock skew: orders the WMS cannot have seen would count as counted and
    raise stock. A snapshot's header and a change feed's page are checked alike."""
    if counted is None:
        return
    now = now or datetime.now(timezone.utc)
    skew = limits.clock_skew
    if taken_at is not None and counted > taken_at + skew:
        raise WmsContractError(
            f"WMS orders_counted_until {counted.isoformat()} is after snapshot_taken_at {taken_at.isoformat()} "
            f"plus the allowed clock skew of {skew.total_seconds():.0f} s: orders the snapshot cannot have seen "
            "would count as counted and raise stock")
    if counted > now + skew:
        raise WmsContractError(
            f"WMS orders_counted_until {counted.isoformat()} is in the future: later than now "
            f"({now.isoformat()}) plus the allowed clock skew of {skew.total_seconds():.0f} s")


def same_snapshot(first: SnapshotHeader, other: SnapshotHeader, where: str) -> None:
    """Every batch of one walk must claim the same snapshot: a walk that mixes snapshots
    (the WMS re-snapshotted mid-walk, a cursor from another walk) is refused."""
    for name in ("snapshot_id", "snapshot_taken_at", "orders_counted_until"):
        a, b = getattr(first, name), getattr(other, name)
        if a != b:
            raise WmsContractError(f"the WMS walk mixes snapshots: {where} has {name} {_show(b)}, the first "
                                   f"page had {_show(a)}; pages of one walk must belong to one snapshot")


def walk_header(walk: CheckedHeader, first: SnapshotHeader, other: SnapshotHeader, where: str,
                limits: SnapshotLimits, now: datetime | None = None) -> CheckedHeader:
    """The walk's snapshot after one more batch. Another snapshot_id, or a watermark on some pages
    and not on others, is a mixed walk (refused). Pages of the same snapshot_id whose times differ
    are a live walk (the WMS stamps each page when it reads it): with `page_times` "earliest" each
    page's times are judged like the first page's and the walk keeps the earliest snapshot time and
    the earliest watermark (orders after it count as not yet in the snapshot, so a page read later
    can only make stock look lower, never higher); with "refuse" the walk is refused, naming the
    setting."""
    if other == first:
        return walk
    if other.snapshot_id != first.snapshot_id or \
            (other.orders_counted_until is None) != (first.orders_counted_until is None):
        same_snapshot(first, other, where)
    if limits.page_times != "earliest":
        changed = "snapshot_taken_at" if other.snapshot_taken_at != first.snapshot_taken_at else "orders_counted_until"
        raise WmsContractError(
            f"the WMS walk mixes snapshot times: {where} has {changed} {_show(getattr(other, changed))}, the first "
            f"page had {_show(getattr(first, changed))}, with the same snapshot_id {_show(first.snapshot_id)}. If "
            "your WMS stamps each page with the time it read it (a live walk), set snapshot_page_times: earliest "
            "(STOCKSYNC_SNAPSHOT_PAGE_TIMES): the walk then keeps its earliest time as snapshot time and watermark")
    page = check_header(other, limits, now)
    counted = walk.orders_counted_until
    if page.orders_counted_until is not None and counted is not None:
        counted = min(counted, page.orders_counted_until)
    return CheckedHeader(walk.snapshot_id, min(walk.snapshot_taken_at, page.snapshot_taken_at), counted)


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
    `RAW_TEXT_MAX_LENGTH` is cut with a marker that names what was cut (how many characters, and a
    digest of the whole text: two long values that share their first characters stay two values,
    never a duplicate the WMS did not send). Either way the value no longer matches the SKU format,
    so validation reports it; other odd characters stay as they are for validation to judge and
    pages to show escaped."""
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
        digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
        value = f"{value[:RAW_TEXT_MAX_LENGTH]}…[{len(value) - RAW_TEXT_MAX_LENGTH} more characters, sha256 {digest}]"
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
    passes over the batch instead of one Python step per row. None when any item is
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
