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

A *gap* means the delta would be wrong, so nothing is staged and the walk says why: the feed no
longer goes back to our sequence (410), the WMS's newest sequence is behind ours (it was reset
or restored), or the sequences jump (an event is missing). The caller records it and leaves the
repair to the next full sync. A walk that stops at a bound (`max_events`, the deadline) is not a
gap: what it read is a consistent prefix, applied as such; the next run goes on from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from include.stocksync.sources.base import (
    Batch,
    SnapshotHeader,
    WalkBounds,
    WmsContractError,
    WmsUnavailable,
    _show,
    item_rows,
    parse_timestamp,
)
from include.stocksync.sources.http import RETRY_STATUSES, _read_capped, _retry_after, decode_json

log = logging.getLogger(__name__)

FEED_PATH = "/v1/stock/feed"
# what an event carries beyond the item contract: dropped before staging
EVENT_FIELDS = frozenset({"changed_at", "reason"})


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
    gap: str | None = None
    stopped: str | None = None  # a bound ended the walk before the newest sequence

    @property
    def snapshot_id(self) -> str:
        return f"wms-feed:{self.after_seq}-{self.through_seq}"

    def as_dict(self) -> dict[str, Any]:
        return {"after_seq": self.after_seq, "through_seq": self.through_seq, "head_seq": self.head_seq,
                "events": self.events, "skus": len(self.items), "pages": self.pages, "gap": self.gap,
                "stopped": self.stopped, "snapshot_id": self.snapshot_id}


class ChangeFeedSource:
    """The feed after `after_seq`, walked once (`walk`), then staged like any source (`batches`)."""

    def __init__(self, session: requests.Session, base_url: str, *, after_seq: int, page_size: int = 5000,
                 max_events: int = 1_000_000, timeout: float = 30.0, attempts: int = 5, backoff: float = 0.5,
                 retry_after_max: float = 60.0, batch_rows: int = 10000,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.after_seq = after_seq
        self.page_size = page_size
        self.max_events = max_events
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.retry_after_max = retry_after_max
        self.batch_rows = batch_rows
        self.sleep = sleep
        self.failures: list[str] = []
        self.delta: FeedDelta | None = None

    # ------------------------------------------------------------------ HTTP

    def _page(self, after: int, where: str, bounds: WalkBounds) -> tuple[int, Any]:
        """(status, body) of one feed page: 200 or 410; retries transient failures."""
        url = f"{self.base_url}{FEED_PATH}"
        problem = ""
        for attempt in range(1, self.attempts + 1):
            retry_after = None
            try:
                response = self.session.get(url, params={"after_seq": after, "limit": self.page_size},
                                            timeout=max(0.5, min(self.timeout, bounds.remaining())), stream=True)
                try:
                    status = response.status_code
                    if status in (200, 410):
                        return status, decode_json(_read_capped(response, bounds, where), where)
                    body = _read_capped(response, None, where, cap=2000).decode("utf-8", "replace")
                finally:
                    response.close()
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if status in (401, 403):
                    raise WmsContractError(f"WMS refused our credentials (HTTP {status}) at {where}: check the "
                                           "password (bearer token) of the WMS Airflow Connection")
                if status not in RETRY_STATUSES:
                    raise WmsContractError(f"WMS answered HTTP {status} at {where} ({url}): {body[:300]}")
                problem = f"HTTP {status}: {body[:200]}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            self.failures.append(f"{where} attempt {attempt}/{self.attempts}: {problem}")
            if attempt < self.attempts:
                delay = self.backoff * (2 ** (attempt - 1))
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.retry_after_max))
                if delay >= bounds.remaining():
                    break
                self.sleep(delay)
        raise WmsUnavailable(f"WMS change feed unreachable at {where} after {self.attempts} attempts: {problem}")

    # ------------------------------------------------------------------ walk

    def walk(self, bounds: WalkBounds) -> FeedDelta:
        """Read the feed from `after_seq` (see the module docstring). Never raises for a gap."""
        self.failures.clear()
        delta = FeedDelta(self.after_seq, self.after_seq)
        self.delta = delta
        after = self.after_seq
        while True:
            where = f"feed page {delta.pages + 1} (after_seq {after})"
            if delta.pages >= bounds.max_batches or bounds.remaining() <= 0:
                delta.stopped = f"bound reached at {where} (feed_deadline_seconds or pages)"
                break
            status, body = self._page(after, where, bounds)
            if not isinstance(body, dict):
                raise WmsContractError(f"{where}: the WMS answered a JSON {type(body).__name__}, not an object")
            if status == 410:
                oldest = body.get("oldest_after_seq")
                delta.gap = (f"the WMS change feed no longer goes back to our last applied sequence {after} "
                             f"(the oldest it answers is {_show(oldest)}): changes between them are lost to it")
                delta.head_seq = _int_or_none(body.get("head_seq"))
                break
            events = body.get("events")
            head = body.get("head_seq")
            next_after = body.get("next_after_seq")
            if not isinstance(events, list) or not _is_int(head) or not _is_int(next_after):
                raise WmsContractError(f"{where}: a feed page needs an 'events' list and integer 'head_seq' and "
                                       f"'next_after_seq' (got {_show(events)[:60]}, {_show(head)}, "
                                       f"{_show(next_after)}): the response does not follow the feed contract")
            if len(events) > self.page_size:
                raise WmsContractError(f"{where}: {len(events)} events, more than the limit of {self.page_size}")
            delta.pages += 1
            delta.head_seq = head
            if head < after:
                delta.gap = (f"the WMS's newest sequence {head} is behind our last applied sequence {after}: "
                             "the WMS was reset or restored, its sequences no longer match ours")
                break
            expected = after + 1
            for event in events:
                seq = event.get("seq") if isinstance(event, dict) else None
                if not _is_int(seq):
                    raise WmsContractError(f"{where}: a feed event without an integer seq: {_show(event)}")
                if seq != expected:
                    delta.gap = (f"the WMS change feed's sequences jump from {expected - 1} to {seq} at {where}: "
                                 f"{'changes are missing' if seq > expected else 'sequences go back'}")
                    break
                expected += 1
                item = {k: v for k, v in event.items() if k not in EVENT_FIELDS}
                sku = item.get("sku")
                key = sku if isinstance(sku, str) else ("<not text>", repr(sku))
                delta.items.pop(key, None)  # keep insertion order = seq order of the newest record
                delta.items[key] = item
            if delta.gap:
                break
            if events and next_after != events[-1]["seq"]:
                raise WmsContractError(f"{where}: next_after_seq {next_after} is not the last event's seq "
                                       f"{events[-1]['seq']}")
            delta.events += len(events)
            delta.taken_at = body.get("taken_at")
            delta.orders_counted_until = body.get("orders_counted_until")
            delta.through_seq = next_after if events else after
            after = delta.through_seq
            if not events or after >= head:
                break
            if delta.events >= self.max_events:
                delta.stopped = f"feed_max_events ({self.max_events}) read; the next run goes on from {after}"
                break
        if delta.taken_at is not None:
            parse_timestamp(delta.taken_at, "taken_at")
            parse_timestamp(delta.orders_counted_until, "orders_counted_until")
        log.info("change feed after %s: %s", self.after_seq, delta.as_dict())
        return delta

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


def _is_int(value: Any) -> bool:
    return type(value) is int


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None
