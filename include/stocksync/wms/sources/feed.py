"""The WMS change feed as a `WmsSource`: what changed after our last applied sequence
(`GET /v1/stock/feed?after_seq=&limit=`, docs/order-push-and-intraday.md).

The feed is a log: one event per change, sequences dense (every change takes the next one). The
walk reads pages from `after_seq` until it reaches the WMS's newest sequence (or a bound), then
hands `extract.py` one delta: the newest record of each SKU, as ordinary contract items, under a
synthetic snapshot header:

- `snapshot_id` `wms-feed:<after>-<through>`: a delta applied once is recognised as a duplicate;
- `snapshot_taken_at`: the last page's read time (the WMS's clock);
- `orders_counted_until`: the last page's own statement of which orders its records count: every
  order the WMS received at or before it has all its changes at or below the last sequence read.
  The apply treats orders acknowledged later as uncounted, exactly as for a full snapshot.

Each event carries its sequence, and that is what the walk goes by, not the order on the page
(`sort_page`): the highest sequence of a SKU wins; an event at or below the position it was asked
from is *stale* (already read: an at-least-once feed redelivering it) and is skipped and counted;
one served twice on a page is read once.

A *gap* means the delta would be wrong, so nothing is staged and the walk says why: the feed no
longer goes back to our sequence (410), the WMS's newest sequence is behind ours (it was reset
or restored), a sequence is missing (on a page, or between its last event and its
`next_after_seq`), or one sequence carries two different records. The caller records it and
leaves the repair to the next full sync. Two other endings are not gaps, since what was read is a
consistent prefix, applied as such, and the next run goes on from its last sequence:

- `stalled`: a page gives nothing new while the WMS's newest sequence is further on (the feed
  stops early): the caller records it and alerts once per stall;
- `stopped`: a bound of ours ended the walk: `max_events` (checked after each whole page: a page
  is never cut, its `orders_counted_until` speaks for all of it), the deadline, the page bound. The
  caller records it and warns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from include.stocksync.wms.client import RetryPolicy, WmsHttp
from include.stocksync.wms.sources.base import (
    Batch,
    SnapshotHeader,
    SnapshotLimits,
    WalkBounds,
    WmsContractError,
    _show,
    check_header,
    check_watermark,
    item_rows,
    parse_timestamp,
)

log = logging.getLogger(__name__)

FEED_PATH = "/v1/stock/feed"
# what an event carries beyond the item contract: dropped before staging
EVENT_FIELDS = frozenset({"changed_at", "reason"})
MAX_SEQ = 2**63 - 1  # sequences are stored in PostgreSQL bigint columns
SHOWN_SEQS = 20  # stale sequences listed on the run record (all are counted)


@dataclass
class FeedDelta:
    after_seq: int
    through_seq: int
    head_seq: int | None = None
    events: int = 0
    pages: int = 0
    items: dict[Any, dict[str, Any]] = field(default_factory=dict)  # newest record per SKU
    taken_at: Any = None
    orders_counted_until: Any = None
    watermark: datetime | None = None  # orders_counted_until, checked (check_watermark)
    gap: str | None = None
    stopped: str | None = None  # a bound of ours ended the walk before the newest sequence
    stalled: str | None = None  # the WMS's feed gave nothing new before its own newest sequence
    stale_events: int = 0  # events at or below the position they were read from: skipped
    stale_seqs: list[int] = field(default_factory=list)  # the first SHOWN_SEQS of them
    duplicate_events: int = 0  # events served twice on a page: read once

    @property
    def snapshot_id(self) -> str:
        return f"wms-feed:{self.after_seq}-{self.through_seq}"

    def count_skipped(self, page: FeedPage) -> None:
        self.stale_events += len(page.stale)
        self.stale_seqs.extend(page.stale[:max(0, SHOWN_SEQS - len(self.stale_seqs))])
        self.duplicate_events += page.duplicates

    def as_dict(self) -> dict[str, Any]:
        return {"after_seq": self.after_seq, "through_seq": self.through_seq, "head_seq": self.head_seq,
                "events": self.events, "skus": len(self.items), "pages": self.pages, "gap": self.gap,
                "stopped": self.stopped, "stalled": self.stalled, "stale_events": self.stale_events,
                "stale_seqs": self.stale_seqs, "duplicate_events": self.duplicate_events,
                "snapshot_id": self.snapshot_id}


class ChangeFeedSource:
    """The feed after `after_seq`, walked once (`walk`), then staged like any source (`batches`)."""

    def __init__(self, session: requests.Session, base_url: str, *, after_seq: int, page_size: int = 5000,
                 max_events: int = 1_000_000, timeout: float = 30.0, attempts: int = 5, backoff: float = 0.5,
                 retry_after_max: float = 60.0, batch_rows: int = 10000, limits: SnapshotLimits | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = WmsHttp(session, base_url, RetryPolicy(attempts, backoff, retry_after_max), timeout, sleep)
        self.after_seq = after_seq
        self.page_size = page_size
        self.max_events = max_events
        self.batch_rows = batch_rows
        self.limits = limits or SnapshotLimits()
        self.failures = self.http.failures
        self.delta: FeedDelta | None = None

    # ------------------------------------------------------------------ HTTP

    def _page(self, after: int, where: str, bounds: WalkBounds) -> tuple[int, Any]:
        """(status, body) of one feed page: 200 or 410; retries transient failures (the one WMS
        client's policy) within the walk's deadline, then raises `WmsUnavailable`."""
        reply = self.http.request("GET", FEED_PATH, where=where, max_bytes=bounds.max_batch_bytes,
                                  params={"after_seq": after, "limit": self.page_size}, deadline=bounds.deadline)
        if reply.status not in (200, 410):
            raise reply.unexpected(where)
        return reply.status, reply.json(where)

    # ------------------------------------------------------------------ walk

    def walk(self, bounds: WalkBounds) -> FeedDelta:
        """Read the feed from `after_seq` (see the module docstring). Never raises for a gap."""
        self.failures.clear()
        delta = FeedDelta(self.after_seq, self.after_seq)
        self.delta = delta
        after = self.after_seq
        while delta.gap is None:
            where = f"feed page {delta.pages + 1} (after_seq {after})"
            delta.stopped = _bound_reached(delta, bounds, where, after)
            if delta.stopped:
                break
            status, body = self._page(after, where, bounds)
            if not isinstance(body, dict):
                raise WmsContractError(f"{where}: the WMS answered a JSON {type(body).__name__}, not an object")
            if status == 410:
                oldest = body.get("oldest_after_seq")
                delta.gap = (f"the WMS change feed no longer goes back to our last applied sequence {after} "
                             f"(the oldest it answers is {_show(oldest)}): changes between them are lost to it")
                delta.head_seq = _seq_or_none(body.get("head_seq"))
                break
            events, head, next_after = self._page_fields(body, where)
            delta.pages += 1
            delta.head_seq = head
            if head < after:
                delta.gap = (f"the WMS's newest sequence {head} is behind our last applied sequence {after}: "
                             "the WMS was reset or restored, its sequences no longer match ours")
                break
            page = sort_page(events, after, where)
            if len(page.new) > self.page_size:  # events read again do not count: the page's bytes bound them
                raise WmsContractError(f"{where}: {len(page.new)} new events, more than the limit of {self.page_size} "
                                       "(loop.feed_page_size): the WMS does not honour the limit parameter")
            delta.count_skipped(page)
            delta.gap = page.gap or _missing_after(page, after, next_after, where)
            if delta.gap:
                break
            for _, event in page.new:  # in seq order: the highest sequence of a SKU is kept
                item = {k: v for k, v in event.items() if k not in EVENT_FIELDS}
                sku = item.get("sku")
                key = sku if isinstance(sku, str) else ("<not text>", repr(sku))
                delta.items.pop(key, None)  # keep insertion order = seq order of the newest record
                delta.items[key] = item
            delta.events += len(page.new)
            if page.new or next_after == after:  # the page's watermark speaks for our new position
                delta.taken_at = body.get("taken_at")
                delta.orders_counted_until = body.get("orders_counted_until")
            after = delta.through_seq = page.new[-1][0] if page.new else after
            if after >= head:
                break
            if not page.new:
                replayed = f", only {len(page.stale)} events at or below it again" if page.stale else ""
                delta.stalled = (f"the WMS's newest sequence is {head} but its change feed gave nothing after {after} "
                                 f"({where}{replayed}): the changes after {after} are not reaching the shop")
                break
            if delta.events >= self.max_events:
                delta.stopped = (f"feed_max_events ({self.max_events}) read through sequence {after} of the WMS's "
                                 f"{head}; the next run goes on from {after}")
                break
        # the times the run records even when nothing is staged (an empty delta's watermark): the
        # checks of a snapshot's header, with or without a taken_at
        taken_at = parse_timestamp(delta.taken_at, "taken_at")
        if delta.items and taken_at is None:  # staged like a snapshot, which must say when it was taken
            raise WmsContractError(f"the WMS change feed's last page (after_seq {after}) has changes but no "
                                   "taken_at: a feed page must say when the WMS answered it")
        delta.watermark = parse_timestamp(delta.orders_counted_until, "orders_counted_until")
        if taken_at is not None:  # check_header checks the watermark against taken_at and now
            check_header(SnapshotHeader(delta.snapshot_id, delta.taken_at, delta.orders_counted_until), self.limits)
        else:
            check_watermark(delta.watermark, None, self.limits)
        log.info("change feed after %s: %s", self.after_seq, delta.as_dict())
        return delta

    @staticmethod
    def _page_fields(body: dict[str, Any], where: str) -> tuple[list[Any], int, int]:
        """(events, head_seq, next_after_seq) of a 200 page, checked against the feed contract."""
        events = body.get("events")
        head = body.get("head_seq")
        next_after = body.get("next_after_seq")
        if not isinstance(events, list) or not _is_seq(head) or not _is_seq(next_after):
            raise WmsContractError(f"{where}: a feed page needs an 'events' list and 'head_seq' and "
                                   f"'next_after_seq' integers from 0 to {MAX_SEQ} (got {_show(events)[:60]}, "
                                   f"{_show(head)}, {_show(next_after)}): the response does not follow the feed "
                                   "contract")
        return events, head, next_after

    def batches(self, bounds: WalkBounds) -> Iterator[Batch]:
        """The walked delta (walking first if needed) as batches of contract items."""
        delta = self.delta or self.walk(bounds)
        if delta.gap:
            raise WmsContractError(f"a gap cannot be staged: {delta.gap}")
        header = SnapshotHeader(delta.snapshot_id, delta.taken_at, delta.orders_counted_until)
        items = list(delta.items.values())
        for batch_no, start in enumerate(range(0, len(items), self.batch_rows)):
            chunk = items[start:start + self.batch_rows]
            yield Batch(header, item_rows(batch_no, chunk), f"feed delta rows {start + 1}-{start + len(chunk)}",
                        len(chunk))


@dataclass
class FeedPage:
    """One page's events, sorted: the new ones (after the position it was asked from) in
    sequence order, and what was skipped; `gap` when the page itself shows changes missing."""

    new: list[tuple[int, dict[str, Any]]]
    stale: list[int]
    duplicates: int = 0
    gap: str | None = None


def sort_page(events: list[Any], after: int, where: str) -> FeedPage:
    """The page's events by sequence, whatever their order on the page: those at or below `after`
    are stale (already read: skipped, counted), an event served twice is read once, and the rest
    must be `after + 1, after + 2, ...` with none missing. One sequence carrying two different
    records is a gap (the feed contradicts itself); an event without a sequence breaks the contract."""
    by_seq: dict[int, dict[str, Any]] = {}
    stale: list[int] = []
    duplicates = 0
    for number, event in enumerate(events, start=1):
        seq = event.get("seq") if isinstance(event, dict) else None
        if not isinstance(event, dict) or not _is_seq(seq):
            raise WmsContractError(f"{where}: event {number} has no integer seq from 0 to {MAX_SEQ}: "
                                   f"{_show(event)}")
        if seq <= after:
            stale.append(seq)
        elif seq not in by_seq:
            by_seq[seq] = event
        elif by_seq[seq] == event:
            duplicates += 1
        else:
            return FeedPage([], stale, duplicates,
                            f"the WMS change feed serves sequence {seq} twice with different records at {where} "
                            f"({_show(by_seq[seq], 200)} and {_show(event, 200)}): it contradicts itself")
    new = sorted(by_seq.items(), key=lambda pair: pair[0])
    for offset, (seq, _) in enumerate(new):
        if seq != after + 1 + offset:
            expected = after + 1 + offset
            missing = f"{expected}" if seq == expected + 1 else f"{expected} to {seq - 1}"
            return FeedPage(new[:offset], stale, duplicates,
                            f"the WMS change feed's sequences jump from {expected - 1} to {seq} at {where}: "
                            f"changes are missing (sequence {missing})")
    return FeedPage(new, stale, duplicates)


def _bound_reached(delta: FeedDelta, bounds: WalkBounds, where: str, after: int) -> str | None:
    """Why the walk stops before `where` (a bound of ours, not the WMS's doing), or None."""
    if delta.pages >= bounds.max_batches:
        return (f"the walk's page bound ({bounds.max_batches} pages: feed_max_events / feed_page_size + 2) "
                f"reached before {where}; the next run goes on from {after}")
    if bounds.remaining() <= 0:
        return f"feed_deadline_seconds reached before {where}; the next run goes on from {after}"
    return None


def _missing_after(page: FeedPage, after: int, next_after: int, where: str) -> str | None:
    """A gap when the page's `next_after_seq` goes past its last event (changes left out of it);
    a `next_after_seq` behind its own events breaks the contract."""
    last = page.new[-1][0] if page.new else after
    if next_after > last:
        return (f"the WMS change feed's page says it goes up to sequence {next_after} but its events end at "
                f"{last} at {where}: changes are missing (sequence {last + 1} to {next_after})")
    if page.new and next_after < last:
        raise WmsContractError(f"{where}: next_after_seq {next_after} is below the page's highest event seq {last}")
    return None


def _is_seq(value: Any) -> bool:
    """A WMS sequence: an integer (not a bool, a float or a string) PostgreSQL's bigint holds, >= 0."""
    return type(value) is int and 0 <= value <= MAX_SEQ


def _seq_or_none(value: Any) -> int | None:
    return value if _is_seq(value) else None
