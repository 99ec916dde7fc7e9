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

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from operator import attrgetter
from typing import Any

import msgspec
import orjson
import requests

from include.stocksync.domain.contract import ITEM_FIELDS
from include.stocksync.wms.client import TRANSIENT_STATUSES, retry_after_seconds
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

RETRY_STATUSES = TRANSIENT_STATUSES  # the one WMS retry policy's (include/stocksync/wms/client.py)
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
# ----------------------------------------------------------------------------------------------------


class WmsClient:
    """Paginated, retrying reader of the WMS stock endpoint over a `requests.Session`.

    The session carries the auth (bearer token from an Airflow Connection) and base URL;
    this class knows only the contract."""

    def __init__(self, session: requests.Session, base_url: str, *, page_size: int = 10000,
                 timeout: float = 30.0, attempts: int = 5, backoff: float = 0.5,
                 retry_after_max: float = 60.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.retry_after_max = retry_after_max
        self.sleep = sleep
        self.failures: list[str] = []  # every failed attempt of the last walk, for the run record

    def _get(self, path: str, params: dict[str, Any], where: str, bounds: WalkBounds | None) -> Any:
        url = f"{self.base_url}{path}"
        last_problem = ""
        for attempt in range(1, self.attempts + 1):
            timeout = self.timeout if bounds is None else max(0.5, min(self.timeout, bounds.remaining()))
            retry_after: float | None = None
            try:
                response = self.session.get(url, params=params, timeout=timeout, stream=True)
                try:
                    status = response.status_code
                    if status == 200:
                        content = _read_capped(response, bounds, where)
                        body = decode_page(content, where)
                        if isinstance(body, dict):
                            body["_bytes"] = len(content)  # counted against the walk's byte bound
                        return body
                    body = _read_capped(response, None, where, cap=2000).decode("utf-8", "replace")
                finally:
                    response.close()
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                if status == 410:
                    raise WmsUnavailable(f"WMS cursor expired mid-walk at {where} ({body[:200]}); the snapshot "
                                         "is gone, the walk must restart (the task retry does that)")
                if status in (401, 403):
                    raise WmsContractError(f"WMS refused our credentials (HTTP {status}) at {where}: check the "
                                           "password (bearer token) of the WMS Airflow Connection")
                if status not in RETRY_STATUSES:
                    raise WmsContractError(f"WMS answered HTTP {status} at {where} ({url}): {body[:300]}")
                last_problem = f"HTTP {status}: {body[:200]}"
                retry_after = _retry_after(response.headers.get("Retry-After"))
            self.failures.append(f"{where} attempt {attempt}/{self.attempts}: {last_problem}")
            if attempt < self.attempts:
                delay = self.backoff * (2 ** (attempt - 1))
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.retry_after_max))
                if bounds is not None and delay >= bounds.remaining():
                    raise WmsContractError(
                        f"the WMS walk passed its deadline of {bounds.deadline - bounds.started:.0f} s at {where}: "
                        f"{last_problem}, and the next attempt ({delay:.1f} s away) would be later still "
                        "(config extract_deadline_seconds)")
                log.warning("WMS request failed at %s (%s), attempt %d/%d, retrying in %.2fs",
                            where, last_problem, attempt, self.attempts, delay)
                self.sleep(delay)
        raise WmsUnavailable(f"WMS unreachable after {self.attempts} attempts at {url} ({where}): {last_problem}")

    def pages(self, bounds: WalkBounds | None = None) -> Iterator[dict[str, Any]]:
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

    def _pages(self, bounds: WalkBounds | None, pool: ThreadPoolExecutor) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        seen_cursors: set[str] = set()
        page_no = 0
        where, pending = self._request(pool, cursor, page_no, bounds)
        while True:
            body = pending.result()
            if not isinstance(body, dict):
                raise WmsContractError(f"{where}: the WMS answered a JSON {type(body).__name__}, not an object")
            items = body.get("items")
            if not isinstance(items, list):
                raise WmsContractError(f"{where}: the page has no 'items' list (got {_show(items)}): "
                                       "the response does not follow the stock contract")
            next_cursor = check_cursor(body.get("next_cursor"), where)
            if next_cursor and not items:
                raise WmsContractError(f"{where}: an empty page with a next_cursor: the walk makes no progress")
            body["_where"] = where
            if bounds is not None:  # what arrived counts before the next page is asked for
                bounds.arrived(len(items), int(body.get("_bytes") or 0), where, last=not next_cursor)
            if next_cursor:
                if next_cursor in seen_cursors or next_cursor == cursor:
                    raise WmsContractError(
                        f"{where}: WMS pagination loops: cursor {next_cursor!r} was already followed")
                seen_cursors.add(next_cursor)
                next_where, pending = self._request(pool, next_cursor, page_no + 1, bounds)
            yield body
            page_no += 1
            if not next_cursor:
                return
            cursor, where = next_cursor, next_where

    def batches(self, bounds: WalkBounds) -> Iterator[Batch]:
        self.failures.clear()  # the same list the caller records (see pipeline.stage)
        for page_no, body in enumerate(self.pages(bounds)):
            header = SnapshotHeader(body.get("snapshot_id"), body.get("snapshot_taken_at"),
                                    body.get("orders_counted_until"))
            items, text = page_copy_text(page_no, body)
            yield Batch(header, item_rows(page_no, items), body["_where"], len(items), text=text)


def page_copy_text(page_no: int, body: dict[str, Any]) -> tuple[list[Any], bytes | None]:
    """A decoded page's items and, when they all take the fast path, their COPY text in one piece;
    else the items as dicts for `item_rows`, row by row, and None."""
    items = body["items"]
    if not body.get("_typed"):
        return items, copy_text(page_no, items)
    text = render_copy_text(page_no, list(map(_SKU, items)),
                            tuple(chain.from_iterable(map(msgspec.structs.astuple, items))))
    if text is None:  # a SKU to make safe or escape: row by row, as dicts
        items = [msgspec.structs.asdict(item) for item in items]
    return items, text


def _read_capped(response: requests.Response, bounds: WalkBounds | None, where: str,
                 cap: int | None = None) -> bytes:
    """The body, refusing one larger than the cap (a hostile or broken WMS can send gigabytes)."""
    limit = cap if cap is not None else (bounds.max_batch_bytes if bounds is not None else 256 * 1024 * 1024)
    declared = response.headers.get("Content-Length")
    if cap is None and declared and declared.isdigit() and int(declared) > limit:
        raise WmsContractError(f"{where}: the page is {int(declared)} bytes, more than the limit of {limit} "
                               "(config max_page_bytes)")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=1 << 20):
        size += len(chunk)
        if size > limit:
            if cap is not None:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise WmsContractError(f"{where}: the page is more than {limit} bytes (config max_page_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_page(content: bytes, where: str) -> Any:
    """A stock page: a sound one decodes into typed items in one pass; anything else (a
    key more or less, a value of another type, a body that is no such object) is read as JSON."""
    try:
        page = _PAGE.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return decode_json(content, where)
    return {"snapshot_id": page.snapshot_id, "snapshot_taken_at": page.snapshot_taken_at,
            "orders_counted_until": page.orders_counted_until, "items": page.items,
            "next_cursor": page.next_cursor, "_typed": True}


def decode_json(content: bytes, where: str) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        # orjson refuses NaN/Infinity and lone surrogates; the stdlib keeps them so validation
        # can name the value instead of the page failing as a whole
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise WmsContractError(f"{where}: the WMS answered a page that is not JSON: {exc}") from exc


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds (delta-seconds or an HTTP date), or None: the WMS policy's reading."""
    return retry_after_seconds(value)
