"""# Simulated third-party WMS (warehouse management system)

A small FastAPI app that plays the warehouse system `stocksync` reads stock
from and sends orders to. It is meant for demos and tests; it keeps all state
in memory and regenerates it deterministically from a seed.

```bash
STOCKSYNC_WMS_TOKEN=... PYTHONPATH=/work/main python -m devstack.wms_service \\
    --host 127.0.0.1 --port 8765 --skus 1000 --seed 42 \\
    [--token-file PATH] [--no-watermark] [--snapshot-ttl 600]
```

The bearer token comes from `--token-file` (first line) or the environment variable
`STOCKSYNC_WMS_TOKEN`, never from the command line: every local user can read a process's
arguments (`ps`), while its environment and a 0600 file are the owner's. There is no default.
`create_app(...)` builds the same app for in-process use.

## Data

SKUs are named `SKU-0000001`, `SKU-0000002`, ... (`f"SKU-{i:07d}"`, `i` from 1).
Every SKU has `on_hand`, `non_usable`, `allocated`, `available` and `seq`, with
`available = on_hand - non_usable - allocated` (never negative). The columns are
numpy `int64` arrays generated with `numpy.random.default_rng(seed)`, so the
same seed always gives the same catalog. A global counter starts at
`max(seq)`; every change of a SKU sets its `seq` to the next counter value.

## Authentication

Every `/v1/*` and `/_admin/*` route needs `Authorization: Bearer <token>`,
otherwise it answers `401 {"error": "missing or invalid bearer token"}`.
`GET /health` is open and answers `{"status": "ok", "skus": N, "instance": <id of this process>}`.

## Public API (`/v1`)

* `GET /v1/stock?cursor=&limit=` walks a consistent snapshot. A call without
  `cursor` takes a new snapshot and answers its first page:
  `{snapshot_id, snapshot_taken_at, orders_counted_until, items, next_cursor}`.
  `orders_counted_until` is the snapshot time (every order received before it
  is counted in `allocated`), or `null` with `--no-watermark`. Items come in
  SKU order; `next_cursor` is opaque, `null` on the last page. `limit`
  defaults to 1000, allowed 1..10000 (else 400). A malformed cursor answers
  400; a cursor whose snapshot is gone (older than `--snapshot-ttl` seconds,
  or evicted because only the 4 newest snapshots are kept) answers 410.
* `GET /v1/stock/changes?after_seq=&limit=` answers
  `{items, next_after_seq}`: the SKUs whose current `seq > after_seq`, ordered
  by `seq` (then SKU), at most `limit`. `next_after_seq` is the last item's
  `seq` or `null` when there are no items. Note: the generated starting `seq`
  values are not unique (random in 1..1000), so paging with
  `after_seq < max(initial seq)` can skip SKUs that share the `seq` at a page
  boundary; every change made after start-up gets a unique `seq`.
* `POST /v1/orders` with header `Idempotency-Key` and body
  `{"order_ref": str, "lines": [{"sku": str, "qty": int > 0}]}`. A new key
  allocates every line (`allocated += qty`, bumps `seq`) and answers
  `201 {receipt_id, order_ref, received_at, lines}`. A known key answers 200
  with the original receipt and allocates nothing (even if the body differs).
  Missing key: 400. Malformed body or unknown SKU: 422. If any SKU lacks
  available stock the whole order is rejected with
  `409 {"error": "insufficient stock for SKU-..."}`. Only accepted orders
  remember their key, so a rejected order may be retried with the same key.

### The change feed and order lifecycle (docs/order-push-and-intraday.md)

* `GET /v1/stock/feed?after_seq=&limit=` is the change *log*: one event per change
  after start-up (or reset), in `seq` order, `seq`s dense (every change takes the next
  one), at most `limit` (1..10000, default 1000). Answers
  `{after_seq, oldest_after_seq, head_seq, taken_at, orders_counted_until, events,
  next_after_seq}`; an event is the SKU's record after the change (`sku, on_hand,
  non_usable, allocated, available, seq`) plus `changed_at` and `reason` (`order`,
  `cancel`, `ship`, `adjust`, `set`). `next_after_seq` is the last event's `seq`
  (`after_seq` when there is none). `orders_counted_until`: every order received at or
  before it has all its changes at `seq <= next_after_seq`, none after it does (the page
  read time when the page reaches `head_seq`). The feed keeps the newest
  `--feed-retention` changes (default 1,000,000): an `after_seq` below
  `oldest_after_seq` answers `410 {"error", "oldest_after_seq", "head_seq"}`.
  (`/v1/stock/changes` above is the compacted view: current records, no history.)
* `POST /v1/orders/cancel` with the `Idempotency-Key` the order was sent with
  releases its allocation (`allocated -= qty`, a `cancel` change per SKU) and answers
  `201 {cancel_id, order_ref, cancelled_at, lines}`; a repeat answers 200 with the
  first cancellation. 404: no accepted order has that key; 409: it has shipped.
* `POST /_admin/ship {"keys": [...]}` ships accepted orders (`on_hand` and `allocated`
  drop together, `available` stays): `{shipped, skipped}`.
* `POST /_admin/adjust {"items": [{"sku", "on_hand"?, "non_usable"?}]}`: relative
  changes (receipts, damages), atomic; 422 for a negative result.
* `POST /_admin/feed-retention {"events": N}` keeps only the newest N changes (N = 0
  forgets them all: any older `after_seq` is then a gap).
* Fault `feed_skip_seqs: [seq, ...]` leaves those events out of feed pages (a feed
  whose sequences jump).
* Fault `feed_stall_after_seq: seq` serves no event after `seq` (pages end there, empty once
  reached, with `orders_counted_until` as for a page ending there) while `head_seq` stays the
  newest: a feed that stops early. `null` clears it.
* Fault `feed_reverse_pages: true` serves each page's events in descending `seq` order (one
  SKU's changes out of order within a page; `next_after_seq` stays the highest).
* Fault `feed_repeat_seqs: [seq, ...]` serves those events twice on their page (duplicates).
* Fault `feed_replay_events: N` starts every page with the N events at or below `after_seq`
  again, within `limit` (an at-least-once feed redelivering what was already read: stale events).

## Admin API (`/_admin`, same token)

* `POST /_admin/reset {"skus": int >= 0, "seed"?: int >= 0}` regenerates the
  catalog and drops snapshots, idempotency keys and faults. `seed` defaults to
  the start-up seed. Answers `{"skus": N}`.
* `POST /_admin/set {"items": [{"sku", "on_hand"?, "non_usable"?,
  "allocated"?}]}` sets fields of existing SKUs (atomically; 422 for an
  unknown SKU, a negative value or a resulting negative `available`),
  recomputes `available`, bumps `seq`. Answers `{"items": [...]}`.
* `GET /_admin/items[?skus=SKU-0000001,SKU-0000002]` answers
  `{"items": [...]}` with the current records (all SKUs without `skus`).
* `POST /_admin/faults {...}` replaces the fault config (answers the active
  config); `GET /_admin/faults` shows it; `DELETE /_admin/faults` clears it.
* `POST /_admin/snapshot-ttl {"seconds": float > 0}` changes the snapshot TTL.

### Faults (they only affect `/v1/*`; all keys optional)

| key | effect |
| --- | --- |
| `latency_ms` | sleep before handling the request |
| `timeout_ms` | sleep after handling, before answering (an order is applied, the answer comes late) |
| `fail_status`, `fail_count` | the next `fail_count` requests answer `fail_status` with `{"error": "injected failure"}` without being handled; `-1` (default) means every request |
| `corrupt` | `[{"sku", "field", "value"}]`: that SKU's `field` is output as `value` verbatim; `"__NaN__"`, `"__Infinity__"`, `"__-Infinity__"` become NaN / Infinity tokens; `"__drop__"` removes the field; an unknown field is added |
| `drop_fields` | field names removed from every item |
| `extra_fields` | object merged into every item |
| `duplicate_sku` | SKU (or list of SKUs) whose item is emitted twice on its page |
| `repeat_page` | 0-based page index served twice within a walk |
| `drop_last_page` | the page before the last answers `next_cursor: null` |
| `max_items` | walks only cover the first N SKUs |
| `zero_all` | every quantity field is 0 |
| `expire_cursors` | every request with a cursor answers 410 |
| `sku_rename` | `{"old": "new"}` renames SKUs on output |
| `no_watermark` | snapshots taken meanwhile have `orders_counted_until: null` |
| `orders_per_window`, `orders_window_s`, `retry_after_form` | `POST /v1/orders` takes at most `orders_per_window` orders per window of `orders_window_s` seconds (default 1); past that it answers `429 {"error": "rate limited"}` with `Retry-After` until the window ends, as whole seconds (`retry_after_form: "seconds"`, default), an HTTP-date (`"date"`) or without the header (`"none"`) |
| `received_at_offset_s` | new order receipts state `received_at` this many seconds (negative: earlier) from the WMS's clock; the feed keeps the true time |
| `page_size_cap` | a page carries at most this many items whatever `limit` asks (a WMS capping its page size) |
| `stamp_pages` | each page after the first carries the time it was served as `snapshot_taken_at` (and `orders_counted_until`, when the snapshot has one): a WMS that walks its live stock |

Item faults (`corrupt`, `drop_fields`, `extra_fields`, `duplicate_sku`,
`zero_all`, `sku_rename`) apply to `/v1/stock` pages and to
`/v1/stock/changes` items; walk faults (`repeat_page`, `drop_last_page`,
`max_items`, `expire_cursors`, `page_size_cap`, `stamp_pages`) apply to
`/v1/stock` only.

## Implementation notes

Snapshots share the live arrays copy-on-write: taking a snapshot is O(1) and
the live arrays are copied only when they are next modified, so several
snapshots of an unchanged catalog cost no memory. All state changes happen
under a `threading.Lock`. Responses are rendered with `orjson` (or
`json.dumps(allow_nan=True)` for pages carrying injected values).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hmac
import itertools
import json
import math
import os
import re
import sys
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "FaultConfig",
    "WmsState",
    "create_app",
    "generate_columns",
    "main",
    "sku_name",
]

# Row indices of the state matrix (shape (4, n), dtype int64).
ON_HAND, NON_USABLE, ALLOCATED, SEQ = 0, 1, 2, 3

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_SKUS = 10_000_000  # SKU names are 7 digits wide up to 9,999,999 (SKU-10000000 is the last)
MAX_SNAPSHOTS = 4
DEFAULT_FEED_RETENTION = 1_000_000  # changes the feed keeps
FEED_TRIM_SLACK = 1000  # trimmed in steps, not on every change
QTY_FIELDS = ("on_hand", "non_usable", "allocated", "available")
ITEM_FIELDS = ("sku", *QTY_FIELDS, "seq")
SETTABLE_FIELDS = ("on_hand", "non_usable", "allocated")

_SKU_RE = re.compile(r"SKU-(\d{7,8})")
_INT_RE = re.compile(r"[+-]?\d{1,19}")
_SPECIAL_VALUES: dict[str, float] = {
    "__NaN__": math.nan,
    "__Infinity__": math.inf,
    "__-Infinity__": -math.inf,
}
_DROP = "__drop__"
_AUTH_ERROR = {"error": "missing or invalid bearer token"}


class ApiError(Exception):
    """An error answered as `{"error": message, **extra}` with `status`."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


# --------------------------------------------------------------------------- helpers


def sku_name(index: int) -> str:
    """Name of the SKU at 0-based `index` (`SKU-0000001` for 0)."""
    return f"SKU-{index + 1:07d}"


def utc_now_iso() -> str:
    """Current UTC time as ISO-8601 with timezone."""
    return datetime.now(UTC).isoformat()


def json_response(obj: Any, status: int = 200, *, allow_nan: bool = False,
                  headers: dict[str, str] | None = None) -> Response:
    """Render `obj` to a JSON response (orjson, stdlib json when needed)."""
    if allow_nan:
        body = json.dumps(obj, allow_nan=True, separators=(",", ":")).encode()
    else:
        try:
            body = orjson.dumps(obj)
        except TypeError:  # e.g. integers beyond 64 bits
            body = json.dumps(obj, allow_nan=True, separators=(",", ":")).encode()
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def error_response(err: ApiError) -> Response:
    return json_response({"error": err.message, **err.extra}, err.status)


def parse_int_param(raw: str | None, name: str, default: int, lo: int, hi: int) -> int:
    """Parse a query parameter as an integer in [lo, hi]; 400 otherwise."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _INT_RE.fullmatch(text):
        raise ApiError(
            400, f"{name} must be an integer between {lo} and {hi}, got {raw!r}"
        )
    value = int(text)
    if not lo <= value <= hi:
        raise ApiError(
            400, f"{name} must be an integer between {lo} and {hi}, got {value}"
        )
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def decode_special(value: Any) -> Any:
    """Translate the special marker strings into float NaN / Infinity."""
    if isinstance(value, str) and value in _SPECIAL_VALUES:
        return _SPECIAL_VALUES[value]
    return value


def encode_cursor(snapshot_id: str, offset: int, page: int, repeated: bool) -> str:
    raw = f"{snapshot_id}:{offset}:{page}:{int(repeated)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, int, int, bool]:
    """Decode a cursor into (snapshot_id, offset, page, repeated); 400 if malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        snapshot_id, offset, page, repeated = text.split(":")
        if not snapshot_id.startswith("snap-") or repeated not in ("0", "1"):
            raise ValueError(text)
        if not (offset.isdigit() and page.isdigit()):
            raise ValueError(text)
        return snapshot_id, int(offset), int(page), repeated == "1"
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ApiError(400, f"malformed cursor: {cursor!r}") from exc


def generate_columns(n: int, seed: int) -> np.ndarray:
    """Deterministic catalog: int64 matrix of shape (4, n) (on_hand, non_usable, allocated, seq)."""
    rng = np.random.default_rng(seed)
    on_hand = rng.integers(0, 501, size=n, dtype=np.int64)
    # non_usable: mostly 0, sometimes 1-5, never above on_hand
    damaged = rng.random(n) < 0.1
    non_usable = np.where(damaged, rng.integers(1, 6, size=n, dtype=np.int64), 0)
    np.minimum(non_usable, on_hand, out=non_usable)
    # allocated: mostly small (0-10), a few anywhere in [0, on_hand - non_usable]
    cap = on_hand - non_usable
    small = rng.integers(0, 11, size=n, dtype=np.int64)
    busy = rng.random(n) < 0.03
    anywhere = np.floor(rng.random(n) * (cap + 1)).astype(np.int64)
    allocated = np.minimum(np.where(busy, anywhere, small), cap)
    seq = rng.integers(1, 1001, size=n, dtype=np.int64)
    data = np.empty((4, n), dtype=np.int64)
    data[ON_HAND] = on_hand
    data[NON_USABLE] = non_usable
    data[ALLOCATED] = allocated
    data[SEQ] = seq
    return data


def build_items(
    data: np.ndarray, indices: slice | np.ndarray, first: int | None = None
) -> list[dict[str, Any]]:
    """Items for `indices` of `data`; `first` is the 0-based index of a contiguous slice."""
    cols = data[:, indices]
    on_hand = cols[ON_HAND]
    non_usable = cols[NON_USABLE]
    allocated = cols[ALLOCATED]
    available = on_hand - non_usable - allocated
    if first is not None:
        names = [f"SKU-{i:07d}" for i in range(first + 1, first + 1 + cols.shape[1])]
    else:
        names = [f"SKU-{i + 1:07d}" for i in np.asarray(indices).tolist()]
    return [
        {
            "sku": s,
            "on_hand": a,
            "non_usable": b,
            "allocated": c,
            "available": d,
            "seq": e,
        }
        for s, a, b, c, d, e in zip(
            names,
            on_hand.tolist(),
            non_usable.tolist(),
            allocated.tolist(),
            available.tolist(),
            cols[SEQ].tolist(),
            strict=True,
        )
    ]


def render_items(data: np.ndarray, first: int, end: int) -> bytes:
    """The JSON array `build_items` + orjson give for the contiguous slice [first, end), rendered
    straight from the arrays (about 4x faster than build_items + orjson, so a walk measures the client, not the
    simulator). Same bytes: the names are ASCII digits and every value an integer."""
    count = end - first
    if count <= 0:
        return b"[]"
    cols = data[:, first:end]
    values = np.empty((count, 6), dtype=np.int64)
    values[:, 0] = np.arange(first + 1, end + 1)
    values[:, 1] = cols[ON_HAND]
    values[:, 2] = cols[NON_USABLE]
    values[:, 3] = cols[ALLOCATED]
    values[:, 4] = cols[ON_HAND] - cols[NON_USABLE] - cols[ALLOCATED]
    values[:, 5] = cols[SEQ]
    # %07d pads the names below 10,000,000 to 7 digits, as sku_name does
    item = b'{"sku":"SKU-%07d","on_hand":%d,"non_usable":%d,"allocated":%d,"available":%d,"seq":%d}'
    return b"[" + b",".join([item] * count) % tuple(values.ravel().tolist()) + b"]"


# --------------------------------------------------------------------------- faults


@dataclass
class FaultConfig:
    """Active fault injection; see the module docstring."""

    latency_ms: float = 0.0
    timeout_ms: float = 0.0
    fail_status: int | None = None
    fail_count: int = 0
    corrupt: list[dict[str, Any]] = field(default_factory=list)
    drop_fields: list[str] = field(default_factory=list)
    extra_fields: dict[str, Any] = field(default_factory=dict)
    duplicate_sku: list[str] = field(default_factory=list)
    repeat_page: int | None = None
    drop_last_page: bool = False
    max_items: int | None = None
    zero_all: bool = False
    expire_cursors: bool = False
    sku_rename: dict[str, str] = field(default_factory=dict)
    no_watermark: bool = False
    page_size_cap: int | None = None
    stamp_pages: bool = False
    feed_skip_seqs: list[int] = field(default_factory=list)  # feed events left out
    feed_stall_after_seq: int | None = None  # no feed event after it (head_seq stays the newest)
    feed_reverse_pages: bool = False  # each feed page's events in descending seq order
    feed_repeat_seqs: list[int] = field(default_factory=list)  # feed events served twice
    feed_replay_events: int = 0  # each feed page repeats the N events at or below after_seq first
    orders_per_window: int | None = None  # rate limit of POST /v1/orders (429 past it)
    orders_window_s: float = 1.0
    retry_after_form: str = "seconds"  # seconds | date | none
    received_at_offset_s: float = 0.0  # receipts state a time this far from the clock
    _raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any) -> FaultConfig:
        """Validate a fault config body; raises 422 `ApiError` on problems."""
        if not isinstance(body, dict):
            raise ApiError(422, "fault config must be a JSON object")
        cfg = cls(_raw=dict(body))
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ApiError(
                422,
                f"unknown fault keys: {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            )

        def number(key: str) -> float:
            value = body[key]
            if not is_number(value) or not math.isfinite(value) or value < 0:
                raise ApiError(422, f"{key} must be a non-negative number")
            return float(value)

        def flag(key: str) -> bool:
            if not isinstance(body[key], bool):
                raise ApiError(422, f"{key} must be true or false")
            return bool(body[key])

        def count(key: str, minimum: int) -> int:
            value = body[key]
            if not is_int(value) or value < minimum:
                raise ApiError(422, f"{key} must be an integer >= {minimum}")
            return int(value)

        def names(key: str) -> list[str]:
            value = body[key]
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value
            ):
                raise ApiError(422, f"{key} must be a string or a list of strings")
            return list(value)

        if "latency_ms" in body:
            cfg.latency_ms = number("latency_ms")
        if "timeout_ms" in body:
            cfg.timeout_ms = number("timeout_ms")
        if "fail_status" in body and body["fail_status"] is not None:
            status = body["fail_status"]
            if not is_int(status) or not 400 <= status <= 599:
                raise ApiError(
                    422, "fail_status must be an HTTP status between 400 and 599"
                )
            cfg.fail_status = status
            cfg.fail_count = count("fail_count", -1) if "fail_count" in body else -1
        elif "fail_count" in body:
            raise ApiError(422, "fail_count needs fail_status")
        if "corrupt" in body:
            entries = body["corrupt"]
            if not isinstance(entries, list):
                raise ApiError(
                    422, "corrupt must be a list of {sku, field, value} objects"
                )
            for i, entry in enumerate(entries):
                if (
                    not isinstance(entry, dict)
                    or not isinstance(entry.get("sku"), str)
                    or not isinstance(entry.get("field"), str)
                    or "value" not in entry
                ):
                    raise ApiError(
                        422,
                        f"corrupt[{i}] must be an object with string sku, string field and value",
                    )
            cfg.corrupt = [dict(e) for e in entries]
        if "drop_fields" in body:
            cfg.drop_fields = names("drop_fields")
        if "extra_fields" in body:
            if not isinstance(body["extra_fields"], dict):
                raise ApiError(422, "extra_fields must be an object")
            cfg.extra_fields = dict(body["extra_fields"])
        if "duplicate_sku" in body and body["duplicate_sku"] is not None:
            cfg.duplicate_sku = names("duplicate_sku")
        if "repeat_page" in body and body["repeat_page"] is not None:
            cfg.repeat_page = count("repeat_page", 0)
        if "max_items" in body and body["max_items"] is not None:
            cfg.max_items = count("max_items", 0)
        if "page_size_cap" in body and body["page_size_cap"] is not None:
            cfg.page_size_cap = count("page_size_cap", 1)
        for key in ("drop_last_page", "zero_all", "expire_cursors", "no_watermark", "feed_reverse_pages",
                    "stamp_pages"):
            if key in body:
                setattr(cfg, key, flag(key))
        if "feed_skip_seqs" in body:  # a list of sequences, each checked
            seqs = body["feed_skip_seqs"]
            if not isinstance(seqs, list) or not all(is_int(v) and v >= 0 for v in seqs):
                raise ApiError(422, "feed_skip_seqs must be a list of non-negative integers")
            cfg.feed_skip_seqs = list(seqs)
        if "feed_repeat_seqs" in body:
            seqs = body["feed_repeat_seqs"]
            if not isinstance(seqs, list) or not all(is_int(v) and v >= 0 for v in seqs):
                raise ApiError(422, "feed_repeat_seqs must be a list of non-negative integers")
            cfg.feed_repeat_seqs = list(seqs)
        if "feed_stall_after_seq" in body and body["feed_stall_after_seq"] is not None:
            cfg.feed_stall_after_seq = count("feed_stall_after_seq", 0)
        if "feed_replay_events" in body:
            cfg.feed_replay_events = count("feed_replay_events", 0)
        if "orders_per_window" in body and body["orders_per_window"] is not None:
            cfg.orders_per_window = count("orders_per_window", 0)
        if "orders_window_s" in body:
            cfg.orders_window_s = number("orders_window_s")
            if not 0 < cfg.orders_window_s <= 3600:
                raise ApiError(422, "orders_window_s must be a number of seconds in (0, 3600]")
        if "retry_after_form" in body:
            if body["retry_after_form"] not in ("seconds", "date", "none"):
                raise ApiError(422, 'retry_after_form must be "seconds", "date" or "none"')
            cfg.retry_after_form = body["retry_after_form"]
        if "received_at_offset_s" in body:
            offset = body["received_at_offset_s"]
            if not is_number(offset) or not math.isfinite(offset) or abs(offset) > 10 * 366 * 86400:
                raise ApiError(422, "received_at_offset_s must be a number of seconds within ten years")
            cfg.received_at_offset_s = float(offset)
        if "sku_rename" in body:
            rename = body["sku_rename"]
            if not isinstance(rename, dict) or not all(
                isinstance(v, str) for v in rename.values()
            ):
                raise ApiError(
                    422, "sku_rename must be an object mapping old SKU to new SKU"
                )
            cfg.sku_rename = dict(rename)
        return cfg

    def describe(self) -> dict[str, Any]:
        """The config as posted, with the live remaining `fail_count`."""
        out = dict(self._raw)
        if self.fail_status is not None:
            out["fail_status"] = self.fail_status
            out["fail_count"] = self.fail_count
        return out

    @property
    def item_faults(self) -> bool:
        return bool(
            self.corrupt
            or self.drop_fields
            or self.extra_fields
            or self.duplicate_sku
            or self.zero_all
            or self.sku_rename
        )


def apply_item_faults(
    items: list[dict[str, Any]], faults: FaultConfig
) -> tuple[list[dict[str, Any]], bool]:
    """Apply item faults in place-ish; returns (items, needs_stdlib_json)."""
    if not faults.item_faults:
        return items, False
    by_sku: dict[str, int] = {item["sku"]: pos for pos, item in enumerate(items)}
    if faults.zero_all:
        for item in items:
            for name in QTY_FIELDS:
                item[name] = 0
    unsafe = False
    for entry in faults.corrupt:
        pos = by_sku.get(entry["sku"])
        if pos is None:
            continue
        value = entry["value"]
        if value == _DROP:
            items[pos].pop(entry["field"], None)
        else:
            items[pos][entry["field"]] = decode_special(value)
            unsafe = True
    if faults.drop_fields:
        for item in items:
            for name in faults.drop_fields:
                item.pop(name, None)
    if faults.extra_fields:
        extra = {k: decode_special(v) for k, v in faults.extra_fields.items()}
        for item in items:
            item.update(extra)
        unsafe = True
    if faults.sku_rename:
        for old, new in faults.sku_rename.items():
            pos = by_sku.get(old)
            if pos is not None and "sku" in items[pos]:
                items[pos]["sku"] = new
    if faults.duplicate_sku:
        dup_positions = {by_sku[s] for s in faults.duplicate_sku if s in by_sku}
        if dup_positions:
            out: list[dict[str, Any]] = []
            for pos, item in enumerate(items):
                out.append(item)
                if pos in dup_positions:
                    out.append(dict(item))
            items = out
    return items, unsafe


# --------------------------------------------------------------------------- state


@dataclass
class Snapshot:
    snapshot_id: str
    data: np.ndarray
    taken_at: str
    taken_monotonic: float
    orders_counted_until: str | None


class WmsState:
    """In-memory WMS state. All mutations happen under `self.lock`."""

    def __init__(
        self,
        skus: int,
        seed: int,
        token: str,
        *,
        watermark: bool = True,
        snapshot_ttl: float = 600.0,
        feed_retention: int = DEFAULT_FEED_RETENTION,
    ) -> None:
        self.lock = threading.Lock()
        self.token = token
        self.watermark = watermark
        self.snapshot_ttl = float(snapshot_ttl)
        self.feed_retention = int(feed_retention)  # how many changes the feed keeps
        self.default_seed = seed
        self._snapshot_counter = itertools.count(1)
        self.reset(skus, seed)

    # -- lifecycle ---------------------------------------------------------

    def reset(self, skus: int, seed: int) -> None:
        data = generate_columns(skus, seed)
        with self.lock:
            self.n = skus
            self.seed = seed
            self.data = data
            self.shared = False  # True while a snapshot references self.data
            self.counter = int(data[SEQ].max()) if skus else 0
            self.snapshots: OrderedDict[str, Snapshot] = OrderedDict()
            self.receipts: dict[str, dict[str, Any]] = {}
            self.faults = FaultConfig()
            self.order_window: tuple[float, int] = (0.0, 0)  # rate limit: window start, orders taken
            # --- change feed and order lifecycle -----------------------------
            # every change after start-up, in seq order: (seq, index, on_hand, non_usable,
            # allocated, changed_at, reason); seqs are dense from log_floor + 1
            self.events: list[tuple[int, int, int, int, int, str, str]] = []
            self.log_floor = self.counter
            # per accepted order key: {"lines": {index: qty}, "state": ..., "cancel": receipt}
            self.orders: dict[str, dict[str, Any]] = {}
            # --- end: change feed and order lifecycle ----------------------------------------

    def _writable(self) -> np.ndarray:
        """Copy-on-write: detach the live arrays from snapshots before mutating."""
        if self.shared:
            self.data = self.data.copy()
            self.shared = False
        return self.data

    def _bump(self, data: np.ndarray, index: int, at: str | None = None, reason: str = "set") -> None:
        self.counter += 1
        data[SEQ, index] = self.counter
        # the change feed keeps this change (the record as it is after it)
        self.events.append((self.counter, index, int(data[ON_HAND, index]), int(data[NON_USABLE, index]),
                            int(data[ALLOCATED, index]), at or utc_now_iso(), reason))
        if len(self.events) > self.feed_retention + FEED_TRIM_SLACK:
            self._trim_feed(self.feed_retention)

    def _trim_feed(self, keep: int) -> None:
        """Forget all but the newest `keep` changes: the feed no longer goes back before them."""
        drop = max(0, len(self.events) - keep)
        if drop:
            self.log_floor = self.events[drop - 1][0]
            del self.events[:drop]

    def sku_index(self, sku: Any) -> int | None:
        if not isinstance(sku, str):
            return None
        m = _SKU_RE.fullmatch(sku)
        if not m:
            return None
        i = int(m.group(1)) - 1
        return i if 0 <= i < self.n and sku_name(i) == sku else None

    # -- faults ------------------------------------------------------------

    def take_failure(self) -> int | None:
        """Consume one injected failure; returns its status or None."""
        with self.lock:
            f = self.faults
            if f.fail_status is None or f.fail_count == 0:
                return None
            if f.fail_count > 0:
                f.fail_count -= 1
            return f.fail_status

    def take_order_slot(self) -> dict[str, str] | None:
        """The order rate limit (`orders_per_window`): None when this order may go through, else
        the headers of its 429 answer (Retry-After until the window ends, in the fault's form)."""
        with self.lock:
            f = self.faults
            if f.orders_per_window is None:
                return None
            now = time.monotonic()
            start, taken = self.order_window
            if now - start >= f.orders_window_s:
                start, taken = now, 0
            if taken < f.orders_per_window:
                self.order_window = (start, taken + 1)
                return None
            self.order_window = (start, taken)
            wait = max(1, math.ceil(start + f.orders_window_s - now))
        if f.retry_after_form == "none":
            return {}
        if f.retry_after_form == "date":
            from email.utils import format_datetime

            # an HTTP-date has whole seconds: the next whole second after the window ends
            when = (datetime.now(UTC) + timedelta(seconds=wait)).replace(microsecond=0) + timedelta(seconds=1)
            return {"Retry-After": format_datetime(when, usegmt=True)}
        return {"Retry-After": str(wait)}

    # -- snapshots ---------------------------------------------------------

    def new_snapshot(self, no_watermark: bool) -> Snapshot:
        with self.lock:
            now_mono = time.monotonic()
            self._prune(now_mono)
            sid = f"snap-{next(self._snapshot_counter):06d}-{uuid.uuid4().hex[:8]}"
            taken_at = utc_now_iso()
            snap = Snapshot(
                snapshot_id=sid,
                data=self.data,
                taken_at=taken_at,
                taken_monotonic=now_mono,
                orders_counted_until=taken_at
                if self.watermark and not no_watermark
                else None,
            )
            self.shared = True
            self.snapshots[sid] = snap
            while len(self.snapshots) > MAX_SNAPSHOTS:
                self.snapshots.popitem(last=False)
            return snap

    def _prune(self, now_mono: float) -> None:
        expired = [
            sid
            for sid, s in self.snapshots.items()
            if now_mono - s.taken_monotonic > self.snapshot_ttl
        ]
        for sid in expired:
            del self.snapshots[sid]

    def get_snapshot(self, sid: str) -> Snapshot | None:
        with self.lock:
            snap = self.snapshots.get(sid)
            if (
                snap is not None
                and time.monotonic() - snap.taken_monotonic > self.snapshot_ttl
            ):
                del self.snapshots[sid]
                return None
            return snap

    # -- orders ------------------------------------------------------------

    def place_order(self, key: str, body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            known = self.receipts.get(key)
            if known is not None:
                return 200, known
        order_ref, lines = self._parse_order(body)
        with self.lock:
            known = self.receipts.get(key)  # a concurrent request may have won
            if known is not None:
                return 200, known
            wanted: dict[int, int] = {}
            for line in lines:
                index = self.sku_index(line["sku"])
                if index is None:
                    raise ApiError(422, f"unknown SKU: {line['sku']}", sku=line["sku"])
                wanted[index] = wanted.get(index, 0) + line["qty"]
            data = self.data
            for index, qty in wanted.items():
                available = int(
                    data[ON_HAND, index]
                    - data[NON_USABLE, index]
                    - data[ALLOCATED, index]
                )
                if qty > available:
                    sku = sku_name(index)
                    raise ApiError(
                        409,
                        f"insufficient stock for {sku}",
                        sku=sku,
                        requested=qty,
                        available=available,
                    )
            data = self._writable()
            received_at = utc_now_iso()  # the receipt's time is its changes' time (feed watermark)
            for index, qty in wanted.items():
                data[ALLOCATED, index] += qty
                self._bump(data, index, received_at, "order")
            if self.faults.received_at_offset_s:  # a WMS whose receipts state another time
                received_at = (datetime.fromisoformat(received_at)
                               + timedelta(seconds=self.faults.received_at_offset_s)).isoformat()
            receipt = {
                "receipt_id": f"rcpt-{uuid.uuid4().hex[:12]}",
                "order_ref": order_ref,
                "received_at": received_at,
                "lines": lines,
            }
            self.receipts[key] = receipt
            self.orders[key] = {"lines": wanted, "state": "allocated", "cancel": None}
            return 201, receipt

    @staticmethod
    def _parse_order(body: Any) -> tuple[str, list[dict[str, Any]]]:
        if not isinstance(body, dict):
            raise ApiError(
                422,
                'order body must be a JSON object {"order_ref": str, "lines": [{"sku": str, "qty": int}]}',
            )
        order_ref = body.get("order_ref")
        if not isinstance(order_ref, str) or not order_ref:
            raise ApiError(422, "order_ref must be a non-empty string")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise ApiError(422, "lines must be a non-empty list of {sku, qty} objects")
        out: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            if not isinstance(line, dict):
                raise ApiError(422, f"lines[{i}] must be an object with sku and qty")
            sku, qty = line.get("sku"), line.get("qty")
            if not isinstance(sku, str) or not sku:
                raise ApiError(422, f"lines[{i}].sku must be a non-empty string")
            if not is_int(qty) or qty <= 0:
                raise ApiError(
                    422, f"lines[{i}].qty must be a positive integer, got {qty!r}"
                )
            if qty > 2**53:
                raise ApiError(422, f"lines[{i}].qty is too large")
            out.append({"sku": sku, "qty": qty})
        return order_ref, out

    # -- admin -------------------------------------------------------------

    def set_items(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ApiError(
                422,
                'body must be {"items": [{"sku", "on_hand"?, "non_usable"?, "allocated"?}]}',
            )
        with self.lock:
            pending: dict[int, dict[str, int]] = {}
            for i, entry in enumerate(body["items"]):
                if not isinstance(entry, dict):
                    raise ApiError(422, f"items[{i}] must be an object")
                index = self.sku_index(entry.get("sku"))
                if index is None:
                    raise ApiError(422, f"items[{i}]: unknown SKU {entry.get('sku')!r}")
                unknown = sorted(set(entry) - {"sku", *SETTABLE_FIELDS})
                if unknown:
                    raise ApiError(
                        422,
                        f"items[{i}]: cannot set {', '.join(unknown)}; settable: {', '.join(SETTABLE_FIELDS)}",
                    )
                current = pending.setdefault(
                    index,
                    {
                        "on_hand": int(self.data[ON_HAND, index]),
                        "non_usable": int(self.data[NON_USABLE, index]),
                        "allocated": int(self.data[ALLOCATED, index]),
                    },
                )
                for name in SETTABLE_FIELDS:
                    if name in entry:
                        value = entry[name]
                        if not is_int(value) or not 0 <= value <= 2**53:
                            raise ApiError(
                                422, f"items[{i}].{name} must be a non-negative integer"
                            )
                        current[name] = value
            for index, values in pending.items():
                available = (
                    values["on_hand"] - values["non_usable"] - values["allocated"]
                )
                if available < 0:
                    raise ApiError(
                        422,
                        f"{sku_name(index)}: resulting available would be negative ({available})",
                    )
            data = self._writable()
            for index, values in pending.items():
                data[ON_HAND, index] = values["on_hand"]
                data[NON_USABLE, index] = values["non_usable"]
                data[ALLOCATED, index] = values["allocated"]
                self._bump(data, index)
            return build_items(
                data, np.fromiter(pending, dtype=np.int64, count=len(pending))
            )

    # --- change feed, cancellations, shipping, relative adjustments ------------

    def feed(self, after_seq: int, limit: int, *, stall_after: int | None = None,
             replay: int = 0) -> dict[str, Any]:
        """One page of the change feed after `after_seq` (see the module docstring); the
        `feed_stall_after_seq` and `feed_replay_events` faults as `stall_after` and `replay`."""
        with self.lock:
            head, floor = self.counter, self.log_floor
            if after_seq < floor:
                raise ApiError(
                    410,
                    f"the change feed no longer goes back to after_seq {after_seq}: the oldest "
                    f"after_seq it answers is {floor}; take a full snapshot (GET /v1/stock)",
                    oldest_after_seq=floor,
                    head_seq=head,
                )
            start = after_seq - floor
            served = head if stall_after is None else min(head, stall_after)
            replayed = self.events[max(0, start - replay) : start][:limit]
            fresh = min(limit - len(replayed), served - after_seq)
            page = self.events[start : start + fresh] if fresh > 0 else []
            taken_at = utc_now_iso()
            next_after = page[-1][0] if page else after_seq
            if next_after >= head:
                counted_until = taken_at
            else:  # every order received before the next change is in this page or before it
                following = datetime.fromisoformat(self.events[start + len(page)][5])
                counted_until = (following - timedelta(microseconds=1)).isoformat()
            page = replayed + page
        events = [
            {
                "seq": seq,
                "sku": sku_name(index),
                "on_hand": on_hand,
                "non_usable": non_usable,
                "allocated": allocated,
                "available": on_hand - non_usable - allocated,
                "changed_at": at,
                "reason": reason,
            }
            for seq, index, on_hand, non_usable, allocated, at, reason in page
        ]
        return {
            "after_seq": after_seq,
            "oldest_after_seq": floor,
            "head_seq": head,
            "taken_at": taken_at,
            "orders_counted_until": counted_until,
            "events": events,
            "next_after_seq": next_after,
        }

    def set_feed_retention(self, events: int) -> dict[str, int]:
        with self.lock:
            self.feed_retention = events
            self._trim_feed(events)
            return {"events": events, "oldest_after_seq": self.log_floor, "head_seq": self.counter}

    def cancel_order(self, key: str) -> tuple[int, dict[str, Any]]:
        """Release an accepted order's allocation, once; a repeat answers the first cancellation."""
        with self.lock:
            order = self.orders.get(key)
            if order is None:
                raise ApiError(404, f"no accepted order with Idempotency-Key {key!r}")
            if order["cancel"] is not None:
                return 200, order["cancel"]
            if order["state"] == "shipped":
                raise ApiError(409, "the order has already shipped: it cannot be cancelled", state="shipped")
            data = self._writable()
            cancelled_at = utc_now_iso()
            for index, qty in order["lines"].items():
                data[ALLOCATED, index] -= min(qty, int(data[ALLOCATED, index]))
                self._bump(data, index, cancelled_at, "cancel")
            receipt = {
                "cancel_id": f"cncl-{uuid.uuid4().hex[:12]}",
                "order_ref": self.receipts[key]["order_ref"],
                "cancelled_at": cancelled_at,
                "lines": self.receipts[key]["lines"],
            }
            order["state"], order["cancel"] = "cancelled", receipt
            return 201, receipt

    def ship_orders(self, keys: list[str]) -> dict[str, Any]:
        """Ship accepted orders: their units leave the warehouse (on_hand and allocated drop
        together, available stays)."""
        shipped, skipped = [], []
        with self.lock:
            for key in keys:
                order = self.orders.get(key)
                if order is None or order["state"] != "allocated":
                    skipped.append({"key": key, "state": None if order is None else order["state"]})
                    continue
                data = self._writable()
                at = utc_now_iso()
                for index, qty in order["lines"].items():
                    take = min(qty, int(data[ALLOCATED, index]), int(data[ON_HAND, index]))
                    data[ON_HAND, index] -= take
                    data[ALLOCATED, index] -= take
                    self._bump(data, index, at, "ship")
                order["state"] = "shipped"
                shipped.append(key)
        return {"shipped": shipped, "skipped": skipped}

    def adjust_items(self, body: Any) -> list[dict[str, Any]]:
        """Relative changes (`on_hand`, `non_usable` deltas: receipts, damages), atomically."""
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ApiError(422, 'body must be {"items": [{"sku", "on_hand"?: delta, "non_usable"?: delta}]}')
        with self.lock:
            pending: dict[int, list[int]] = {}
            for i, entry in enumerate(body["items"]):
                index = self.sku_index(entry.get("sku")) if isinstance(entry, dict) else None
                if index is None:
                    raise ApiError(422, f"items[{i}]: unknown SKU or not an object")
                unknown = sorted(set(entry) - {"sku", "on_hand", "non_usable"})
                deltas = [entry.get("on_hand", 0), entry.get("non_usable", 0)]
                if unknown or not all(is_int(d) and abs(d) <= 2**40 for d in deltas):
                    raise ApiError(422, f"items[{i}]: only integer on_hand/non_usable deltas may be given")
                current = pending.setdefault(
                    index, [int(self.data[ON_HAND, index]), int(self.data[NON_USABLE, index])]
                )
                current[0] += deltas[0]
                current[1] += deltas[1]
            for index, (on_hand, non_usable) in pending.items():
                allocated = int(self.data[ALLOCATED, index])
                if on_hand < 0 or non_usable < 0 or on_hand - non_usable - allocated < 0:
                    raise ApiError(422, f"{sku_name(index)}: the adjustment would leave a negative figure")
            data = self._writable()
            at = utc_now_iso()
            for index, (on_hand, non_usable) in pending.items():
                data[ON_HAND, index] = on_hand
                data[NON_USABLE, index] = non_usable
                self._bump(data, index, at, "adjust")
            return build_items(data, np.fromiter(pending, dtype=np.int64, count=len(pending)))

    # --- end: change feed, cancellations, shipping, relative adjustments -----------------

    def get_items(self, skus: list[str] | None) -> list[dict[str, Any]]:
        with self.lock:
            data = self.data
            if skus is None:
                return build_items(data, slice(0, self.n), first=0)
            indices = []
            for sku in skus:
                index = self.sku_index(sku)
                if index is None:
                    raise ApiError(422, f"unknown SKU: {sku}", sku=sku)
                indices.append(index)
            return build_items(data, np.asarray(indices, dtype=np.int64))

    def changes(self, after_seq: int, limit: int) -> list[dict[str, Any]]:
        with self.lock:
            data = self.data
            if after_seq >= self.counter:
                return []
            seq = data[SEQ]
            idx = np.flatnonzero(seq > after_seq)
            if idx.size > limit:
                # cheap pre-selection of the `limit` smallest seqs, then a stable sort
                cut = np.partition(seq[idx], limit - 1)[limit - 1]
                idx = idx[seq[idx] <= cut]
            order = idx[np.argsort(seq[idx], kind="stable")][:limit]
            return build_items(data, order)


# --------------------------------------------------------------------------- app


def create_app(
    skus: int = 1000,
    seed: int = 42,
    *,
    token: str,
    watermark: bool = True,
    snapshot_ttl: float = 600.0,
    feed_retention: int = DEFAULT_FEED_RETENTION,
) -> FastAPI:
    """Build the WMS app with a freshly generated catalog."""
    if not token:
        raise ValueError("a bearer token is required (an empty one would match an empty header)")
    if not 0 <= skus <= MAX_SKUS:
        raise ValueError(f"skus must be in 0..{MAX_SKUS}")
    state = WmsState(skus, seed, token, watermark=watermark, snapshot_ttl=snapshot_ttl,
                     feed_retention=feed_retention)
    app = FastAPI(
        title="stocksync WMS simulator", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.wms = state
    # Identifies this process: the demo re-seeds the shop when the WMS it seeded is gone.
    instance = uuid.uuid4().hex

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"error": str(exc.detail).lower()}, exc.status_code)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return error_response(exc)

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), state.token.encode())

    async def read_json(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            raise ApiError(422, "request body must be JSON, got an empty body")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(422, f"request body is not valid JSON: {exc}") from exc

    async def v1_preflight(request: Request) -> tuple[Response | None, FaultConfig]:
        """Auth, latency and injected failures for /v1 routes."""
        if not authorized(request):
            return json_response(_AUTH_ERROR, 401), state.faults
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        status = state.take_failure()
        if status is not None:
            return json_response({"error": "injected failure"}, status), faults
        return None, state.faults

    async def v1_answer(response: Response, faults: FaultConfig) -> Response:
        if faults.timeout_ms:
            await asyncio.sleep(faults.timeout_ms / 1000)
        return response

    def admin_guard(request: Request) -> None:
        if not authorized(request):
            raise ApiError(401, _AUTH_ERROR["error"])

    @app.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok", "skus": state.n, "instance": instance})

    @app.get("/v1/stock")
    async def stock(request: Request) -> Response:
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        try:
            response = stock_page(request, faults)
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    def stock_page(request: Request, faults: FaultConfig) -> Response:
        params = request.query_params
        limit = parse_int_param(
            params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT
        )
        if faults.page_size_cap is not None:
            limit = min(limit, faults.page_size_cap)
        cursor = params.get("cursor") or None
        if cursor is None:
            snap = state.new_snapshot(faults.no_watermark)
            offset, page, repeated = 0, 0, False
        else:
            sid, offset, page, repeated = decode_cursor(cursor)
            found = None if faults.expire_cursors else state.get_snapshot(sid)
            if found is None:
                raise ApiError(
                    410,
                    f"cursor expired: snapshot {sid} is no longer available; restart the walk",
                )
            snap = found
        total = snap.data.shape[1]
        if faults.max_items is not None:
            total = min(total, faults.max_items)
        if offset > total:
            raise ApiError(
                400, f"malformed cursor: offset {offset} beyond the snapshot"
            )
        end = min(offset + limit, total)
        next_cursor: str | None = None
        if end < total and not (faults.drop_last_page and end + limit >= total):
            next_cursor = encode_cursor(snap.snapshot_id, end, page + 1, False)
        if (
            faults.repeat_page is not None
            and page == faults.repeat_page
            and not repeated
        ):
            next_cursor = encode_cursor(snap.snapshot_id, offset, page, True)
        header = {
            "snapshot_id": snap.snapshot_id,
            "snapshot_taken_at": snap.taken_at,
            "orders_counted_until": snap.orders_counted_until,
        }
        if faults.stamp_pages and cursor is not None:  # each later page: the time it is served
            served_at = utc_now_iso()
            header["snapshot_taken_at"] = served_at
            if snap.orders_counted_until is not None:
                header["orders_counted_until"] = served_at
        if not faults.item_faults:  # the common case, rendered from the arrays (same bytes)
            head = orjson.dumps(header)[:-1]
            tail = orjson.dumps({"next_cursor": next_cursor})[1:]
            return Response(content=b"".join([head, b',"items":', render_items(snap.data, offset, end), b",", tail]),
                            media_type="application/json")
        items = build_items(snap.data, slice(offset, end), first=offset)
        items, unsafe = apply_item_faults(items, faults)
        body = {**header, "items": items, "next_cursor": next_cursor}
        return json_response(body, allow_nan=unsafe)

    @app.get("/v1/stock/changes")
    async def stock_changes(request: Request) -> Response:
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        try:
            params = request.query_params
            after_seq = parse_int_param(
                params.get("after_seq"), "after_seq", 0, 0, 2**62
            )
            limit = parse_int_param(
                params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT
            )
            items = state.changes(after_seq, limit)
            next_after_seq = items[-1]["seq"] if items else None
            items, unsafe = apply_item_faults(items, faults)
            response = json_response(
                {"items": items, "next_after_seq": next_after_seq}, allow_nan=unsafe
            )
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    def single_item(sku: str) -> dict[str, Any]:
        """One SKU's current record, stamped with the time it was read under the state lock (an
        order received before `taken_at` is counted in `allocated`)."""
        with state.lock:
            index = state.sku_index(sku)
            if index is None:
                raise ApiError(404, f"unknown SKU: {sku}", sku=sku)
            item = build_items(state.data, np.asarray([index], dtype=np.int64))[0]
            item["taken_at"] = utc_now_iso()
        return item

    @app.get("/v1/stock/items/{sku}")
    async def stock_item(request: Request, sku: str) -> Response:
        """`{sku, on_hand, non_usable, allocated, available, seq, taken_at}` of one SKU now (the
        availability service's live mode); 404 for an unknown SKU. Bearer auth and faults as for
        every /v1 route; item faults apply to the item."""
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        try:
            items, unsafe = apply_item_faults([single_item(sku)], faults)
            response = json_response(items[0], allow_nan=unsafe)
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    @app.post("/v1/orders")
    async def orders(request: Request) -> Response:
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        limited = state.take_order_slot()
        if limited is not None:
            return json_response({"error": "rate limited"}, 429, headers=limited)
        try:
            key = request.headers.get("idempotency-key", "").strip()
            if not key:
                raise ApiError(400, "missing Idempotency-Key header")
            body = await read_json(request)
            status, receipt = state.place_order(key, body)
            response = json_response(receipt, status)
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    # --- change feed, cancellations, shipping, adjustments, feed retention -----

    @app.get("/v1/stock/feed")
    async def stock_feed(request: Request) -> Response:
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        try:
            params = request.query_params
            after_seq = parse_int_param(params.get("after_seq"), "after_seq", 0, 0, 2**62)
            limit = parse_int_param(params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
            page = state.feed(after_seq, limit, stall_after=faults.feed_stall_after_seq,
                              replay=faults.feed_replay_events)
            events = page["events"]
            if faults.feed_skip_seqs:
                skip = set(faults.feed_skip_seqs)
                events = [e for e in events if e["seq"] not in skip]
            if faults.feed_repeat_seqs:
                repeat = set(faults.feed_repeat_seqs)
                events = [copy for e in events for copy in ([e, dict(e)] if e["seq"] in repeat else [e])]
            if faults.feed_reverse_pages:
                events.reverse()
            page["events"], unsafe = apply_item_faults(events, faults)
            response = json_response(page, allow_nan=unsafe)
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    @app.post("/v1/orders/cancel")
    async def cancel_order(request: Request) -> Response:
        early, faults = await v1_preflight(request)
        if early is not None:
            return early
        try:
            key = request.headers.get("idempotency-key", "").strip()
            if not key:
                raise ApiError(400, "missing Idempotency-Key header (the key the order was sent with)")
            status, receipt = state.cancel_order(key)
            response = json_response(receipt, status)
        except ApiError as err:
            response = error_response(err)
        return await v1_answer(response, faults)

    @app.post("/_admin/ship")
    async def admin_ship(request: Request) -> Response:
        admin_guard(request)
        body = await read_json(request)
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ApiError(422, 'body must be {"keys": [idempotency keys of accepted orders]}')
        return json_response(state.ship_orders(keys))

    @app.post("/_admin/adjust")
    async def admin_adjust(request: Request) -> Response:
        admin_guard(request)
        return json_response({"items": state.adjust_items(await read_json(request))})

    @app.post("/_admin/feed-retention")
    async def admin_feed_retention(request: Request) -> Response:
        admin_guard(request)
        body = await read_json(request)
        events = body.get("events") if isinstance(body, dict) else None
        if not is_int(events) or events < 0:
            raise ApiError(422, 'body must be {"events": int >= 0}')
        return json_response(state.set_feed_retention(events))

    # --- end: change feed, cancellations, shipping, adjustments, feed retention ----------

    @app.post("/_admin/reset")
    async def admin_reset(request: Request) -> Response:
        admin_guard(request)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(422, 'body must be {"skus": int, "seed": int}')
        skus, seed = body.get("skus"), body.get("seed", state.default_seed)
        if not is_int(skus) or not 0 <= skus <= MAX_SKUS:
            raise ApiError(422, f"skus must be an integer in 0..{MAX_SKUS}")
        if not is_int(seed) or seed < 0:
            raise ApiError(422, "seed must be a non-negative integer")
        state.reset(skus, seed)
        return json_response({"skus": skus})

    @app.post("/_admin/set")
    async def admin_set(request: Request) -> Response:
        admin_guard(request)
        return json_response({"items": state.set_items(await read_json(request))})

    @app.get("/_admin/items")
    async def admin_items(request: Request) -> Response:
        admin_guard(request)
        raw = request.query_params.get("skus")
        skus = None if raw is None else [s.strip() for s in raw.split(",") if s.strip()]
        return json_response({"items": state.get_items(skus)})

    @app.get("/_admin/faults")
    async def admin_get_faults(request: Request) -> Response:
        admin_guard(request)
        return json_response(state.faults.describe(), allow_nan=True)

    @app.post("/_admin/faults")
    async def admin_set_faults(request: Request) -> Response:
        admin_guard(request)
        cfg = FaultConfig.parse(await read_json(request))
        with state.lock:
            state.faults = cfg
        return json_response(cfg.describe(), allow_nan=True)

    @app.delete("/_admin/faults")
    async def admin_clear_faults(request: Request) -> Response:
        admin_guard(request)
        with state.lock:
            state.faults = FaultConfig()
        return json_response({})

    @app.post("/_admin/snapshot-ttl")
    async def admin_snapshot_ttl(request: Request) -> Response:
        admin_guard(request)
        body = await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not is_number(seconds) or not math.isfinite(seconds) or seconds <= 0:
            raise ApiError(422, 'body must be {"seconds": number > 0}')
        with state.lock:
            state.snapshot_ttl = float(seconds)
        return json_response({"seconds": float(seconds)})

    return app


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.wms_service",
        description="Simulated WMS for stocksync.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--skus", type=int, default=1000, help="number of SKUs to generate"
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="seed for numpy.random.default_rng"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="file whose first line is the bearer token (default: $STOCKSYNC_WMS_TOKEN)",
    )
    # refused below with an explanation, rather than taken for --token-file by abbreviation
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-watermark", action="store_true", help="answer orders_counted_until: null"
    )
    parser.add_argument(
        "--snapshot-ttl",
        type=float,
        default=600.0,
        help="seconds a snapshot stays walkable",
    )
    parser.add_argument(
        "--feed-retention",
        type=int,
        default=DEFAULT_FEED_RETENTION,
        help="changes the change feed keeps (older after_seq answer 410)",
    )
    args = parser.parse_args(argv)
    if args.token is not None:
        parser.error(
            "--token is not accepted: a command line is visible to every local user (ps); "
            "set STOCKSYNC_WMS_TOKEN or pass --token-file"
        )
    if args.token_file is not None:
        try:
            lines = args.token_file.read_text().splitlines()
        except OSError as exc:
            parser.error(f"--token-file: {exc}")
        args.token = lines[0].strip() if lines else ""
    else:
        args.token = os.environ.get("STOCKSYNC_WMS_TOKEN", "").strip()
    if not args.token:
        parser.error("no bearer token: set STOCKSYNC_WMS_TOKEN or pass --token-file")
    if not 0 <= args.skus <= MAX_SKUS:
        parser.error(f"--skus must be in 0..{MAX_SKUS}")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    if not args.snapshot_ttl > 0:
        parser.error("--snapshot-ttl must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    app = create_app(
        args.skus,
        args.seed,
        token=args.token,
        watermark=not args.no_watermark,
        snapshot_ttl=args.snapshot_ttl,
        feed_retention=args.feed_retention,
    )
    print(
        f"WMS simulator: {args.skus} SKUs on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
