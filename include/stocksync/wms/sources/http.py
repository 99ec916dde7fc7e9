"""The WMS's HTTP stock API as a `WmsSource`: `GET /v1/stock?cursor=&limit=`, page by page.

Transient failures (connection refused or reset, timeouts, 429, 5xx) are retried with
exponential backoff, honouring `Retry-After`, within the walk's deadline; everything else
(401/403, other 4xx, a body that is not JSON or breaks the contract, a page larger than
`max_batch_bytes`) fails at once, naming the page and cursor.

The walk is bounded by what arrives (`WalkBounds`): a WMS that serves fewer items per page than
the `limit` we ask for (many APIs cap their page size) is walked at the page size it serves,
while the items and bytes that arrive stay bounded by the enabled catalog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import requests

from include.stocksync.domain.contract import ITEM_FIELDS
from include.stocksync.wms.client import RetryPolicy, WmsHttp, decode_json
from include.stocksync.wms.errors import WmsDeadlinePassed
from include.stocksync.wms.sources.base import (
    Batch,
    SnapshotHeader,
    WalkBounds,
    WmsContractError,
    WmsUnavailable,
    _show,
    check_cursor,
    copy_text,
    item_rows,
    render_copy_text,
)

log = logging.getLogger(__name__)

# a page read without walk bounds (a benchmark, a test) is still read within this many bytes
UNBOUNDED_WALK_PAGE_BYTES = 256 * 1024 * 1024
STOCK_PATH = "/v1/stock"


# --- a page of well-formed items decoded straight into typed rows -----------------------
# An item that takes item_rows' fast path, derived from the contract: exactly its keys, in its
# order, text where it says text and integers where it says integer (strict: no bool, no float, no
# numeric text, nothing past 64 bits).
_Item = msgspec.defstruct("_Item", [(f.name, str if f.kind == "text" else int) for f in ITEM_FIELDS],
                          forbid_unknown_fields=True)


class _Page(msgspec.Struct):
    items: list[_Item]
    snapshot_id: Any = None
    snapshot_taken_at: Any = None
    orders_counted_until: Any = None
    next_cursor: Any = None


_PAGE = msgspec.json.Decoder(_Page)
_SKU = attrgetter("sku")


@dataclass
class Page:
    """One stock page as it arrived: the WMS's JSON (`body`, exactly what it sent: nothing of ours is
    written into it, so no key a WMS sends can pass for our bookkeeping) and what we know of it:
    whether it decoded whole into typed items (`typed`), its size in bytes, where it was asked for."""
    body: Any
    typed: bool = False
    size: int = 0
    where: str = ""
# ----------------------------------------------------------------------------------------------------


class WmsClient:
    """Paginated, retrying reader of the WMS stock endpoint through the one WMS client (`WmsHttp`).

    The session carries the auth (bearer token from an Airflow Connection) and base URL;
    this class knows only the contract."""

    def __init__(self, session: requests.Session, base_url: str, *, page_size: int = 10000,
                 timeout: float = 30.0, attempts: int = 5, backoff: float = 0.5,
                 retry_after_max: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.http = WmsHttp(session, base_url, RetryPolicy(attempts, backoff, retry_after_max), timeout, sleep)
        self.page_size = page_size
        self.failures = self.http.failures  # every failed attempt of the last walk, for the run record

    def _get(self, path: str, params: dict[str, Any], where: str, bounds: WalkBounds | None) -> Page:
        limit = bounds.max_batch_bytes if bounds is not None else UNBOUNDED_WALK_PAGE_BYTES
        try:
            reply = self.http.request("GET", path, where=where, max_bytes=limit, params=params,
                                      deadline=None if bounds is None else bounds.deadline)
        except WmsDeadlinePassed as exc:
            assert bounds is not None
            raise WmsContractError(f"the WMS walk passed its deadline of {bounds.deadline - bounds.started:.0f} s "
                                   f"at {where}: {exc} (config extract_deadline_seconds)") from exc
        if reply.status == 410:
            raise WmsUnavailable(f"WMS cursor expired mid-walk at {where} ({reply.text(200)}); the snapshot "
                                 "is gone, the walk must restart (the task retry does that)")
        if reply.status != 200:
            raise reply.unexpected(where)
        page = decode_page(reply.content, where)
        page.size = len(reply.content)  # counted against the walk's byte bound
        return page

    def pages(self, bounds: WalkBounds | None = None) -> Iterator[Page]:
        """Every page body of one snapshot walk, in order; each checked against the page contract.

        As soon as a page names the next cursor, the next page is requested on a thread
        of its own, so the WMS renders and sends it while the caller stages this one."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wms-page")
        try:
            yield from self._pages(bounds, pool)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a walk given up leaves no request behind

    def _request(self, pool: ThreadPoolExecutor, cursor: str | None, page_no: int,
                 bounds: WalkBounds | None) -> tuple[str, Future[Any]]:
        where = f"page {page_no + 1} (cursor {cursor!r})" if cursor else "page 1 (no cursor)"
        if bounds is not None:
            bounds.check(page_no, where)
        params: dict[str, Any] = {"limit": self.page_size}
        if cursor:
            params["cursor"] = cursor
        return where, pool.submit(self._get, STOCK_PATH, params, where, bounds)

    def _pages(self, bounds: WalkBounds | None, pool: ThreadPoolExecutor) -> Iterator[Page]:
        cursor: str | None = None
        seen_cursors: set[str] = set()
        page_no = 0
        where, pending = self._request(pool, cursor, page_no, bounds)
        while True:
            page = pending.result()
            body = page.body
            if not isinstance(body, dict):
                raise WmsContractError(f"{where}: the WMS answered a JSON {type(body).__name__}, not an object")
            items = body.get("items")
            if not isinstance(items, list):
                raise WmsContractError(f"{where}: the page has no 'items' list (got {_show(items)}): "
                                       "the response does not follow the stock contract")
            next_cursor = check_cursor(body.get("next_cursor"), where)
            if next_cursor and not items:
                raise WmsContractError(f"{where}: an empty page with a next_cursor: the walk makes no progress")
            page.where = where
            if bounds is not None:  # what arrived counts before the next page is asked for
                bounds.arrived(len(items), page.size, where, last=not next_cursor)
            if next_cursor:
                if next_cursor in seen_cursors or next_cursor == cursor:
                    raise WmsContractError(
                        f"{where}: WMS pagination loops: cursor {next_cursor!r} was already followed")
                seen_cursors.add(next_cursor)
                next_where, pending = self._request(pool, next_cursor, page_no + 1, bounds)
            yield page
            page_no += 1
            if not next_cursor:
                return
            cursor, where = next_cursor, next_where

    def batches(self, bounds: WalkBounds) -> Iterator[Batch]:
        self.failures.clear()  # the same list the caller records (see pipeline.stage)
        for page_no, page in enumerate(self.pages(bounds)):
            body = page.body
            header = SnapshotHeader(body.get("snapshot_id"), body.get("snapshot_taken_at"),
                                    body.get("orders_counted_until"))
            items, text = page_copy_text(page_no, page)
            yield Batch(header, item_rows(page_no, items), page.where, len(items), text=text)


def page_copy_text(page_no: int, page: Page) -> tuple[list[Any], bytes | None]:
    """A decoded page's items and, when they all take the fast path, their COPY text in one piece;
    else the items as dicts for `item_rows`, row by row, and None."""
    items = page.body["items"]
    if not page.typed:
        return items, copy_text(page_no, items)
    text = render_copy_text(page_no, list(map(_SKU, items)),
                            tuple(chain.from_iterable(map(msgspec.structs.astuple, items))))
    if text is None:  # a SKU to make safe or escape: row by row, as dicts
        items = [msgspec.structs.asdict(item) for item in items]
    return items, text


def decode_page(content: bytes, where: str) -> Page:
    """A stock page: a sound one decodes into typed items in one pass; anything else (a
    key more or less, a value of another type, a body that is no such object) is read as JSON."""
    try:
        page = _PAGE.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return Page(decode_json(content, where))
    return Page({"snapshot_id": page.snapshot_id, "snapshot_taken_at": page.snapshot_taken_at,
                 "orders_counted_until": page.orders_counted_until, "items": page.items,
                 "next_cursor": page.next_cursor}, typed=True)
