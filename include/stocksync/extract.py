"""Extract WMS stock counts (shared/DESIGN.md §2) into a raw staging table.

Walks `GET /v1/stock` page by page (one consistent snapshot), retrying each page with
exponential backoff on connection errors, timeouts, 429 and 5xx. Each page is streamed
straight into an UNLOGGED staging table with COPY, so memory stays at one page whatever
the catalog size. Values are stored as text exactly as received: judging them is the
validation step's job, and a malformed value must reach it rather than break the load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
import psycopg
import requests

from include.stocksync.db import query, run_key

log = logging.getLogger(__name__)

FIELDS = ("sku", "on_hand", "non_usable", "allocated", "available", "seq")
FIELD_SET = frozenset(FIELDS)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class WmsError(RuntimeError):
    """The WMS could not be read; the message says why and what to do."""


@dataclass(frozen=True)
class Page:
    snapshot_id: str
    snapshot_taken_at: str | None
    orders_counted_until: str | None
    items: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class ExtractResult:
    staging_table: str
    snapshot_id: str
    snapshot_taken_at: datetime | None
    orders_counted_until: datetime | None
    request_started_at: datetime
    pages: int
    rows: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "staging_table": self.staging_table,
            "snapshot_id": self.snapshot_id,
            "snapshot_taken_at": _iso(self.snapshot_taken_at),
            "orders_counted_until": _iso(self.orders_counted_until),
            "request_started_at": _iso(self.request_started_at),
            "pages": self.pages,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_timestamp(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise WmsError(f"WMS field {field!r} is not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise WmsError(f"WMS field {field!r} has no timezone: {value!r}")
    return parsed


def raw_table(run_id: str) -> str:
    return f"raw_{run_key(run_id)}"


class WmsClient:
    """Paginated, retrying reader of the WMS stock endpoint over a `requests.Session`.

    The session carries the auth (bearer token from an Airflow Connection) and base URL;
    this class knows only the contract.
    """

    def __init__(self, session: requests.Session, base_url: str, *, page_size: int = 10000,
                 timeout: float = 30.0, attempts: int = 5, backoff: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = f"{self.base_url}{path}"
        last_problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.get(url, params=params, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return orjson.loads(response.content)
                    except orjson.JSONDecodeError:
                        # orjson refuses NaN/Infinity; the stdlib keeps them so validation can name them
                        import json

                        try:
                            return json.loads(response.content)
                        except ValueError as exc:
                            raise WmsError(f"WMS returned a page that is not JSON ({url}): {exc}") from exc
                if response.status_code == 410:
                    raise WmsError(f"WMS cursor expired mid-walk ({response.text[:200]}); "
                                   "the snapshot is gone, the walk must restart (the task retry does that)")
                if response.status_code in (401, 403):
                    raise WmsError(f"WMS refused our credentials (HTTP {response.status_code}): "
                                   "check the password (bearer token) of the WMS Airflow Connection")
                if response.status_code not in RETRY_STATUSES:
                    raise WmsError(f"WMS answered HTTP {response.status_code} for {url}: {response.text[:300]}")
                last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
            if attempt < self.attempts:
                delay = self.backoff * (2 ** (attempt - 1))
                log.warning("WMS request failed (%s), attempt %d/%d, retrying in %.2fs",
                            last_problem, attempt, self.attempts, delay)
                self.sleep(delay)
        raise WmsError(f"WMS unreachable after {self.attempts} attempts at {url}: {last_problem}")

    def pages(self) -> Iterator[Page]:
        """Every page of one snapshot walk, in order."""
        cursor: str | None = None
        snapshot_id: str | None = None
        seen_cursors: set[str] = set()
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if cursor:
                params["cursor"] = cursor
            body = self._get("/v1/stock", params)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise WmsError("WMS page has no 'items' list: the response does not follow the stock contract")
            page_snapshot = body.get("snapshot_id")
            if not page_snapshot:
                raise WmsError("WMS page has no snapshot_id")
            if snapshot_id is None:
                snapshot_id = str(page_snapshot)
            elif page_snapshot != snapshot_id:
                raise WmsError(f"WMS changed snapshot mid-walk ({snapshot_id} -> {page_snapshot}); "
                               "pages of one walk must belong to one snapshot")
            cursor = body.get("next_cursor")
            yield Page(snapshot_id, body.get("snapshot_taken_at"), body.get("orders_counted_until"),
                       body["items"], cursor)
            if not cursor:
                return
            if cursor in seen_cursors:
                raise WmsError(f"WMS pagination loops: cursor {cursor!r} was already followed")
            seen_cursors.add(cursor)


def _text(value: Any) -> str | None:
    """A JSON value as the text the raw table stores (None stays NULL)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return orjson.dumps(value).decode()


def page_rows(page_no: int, items: list[Any]) -> Iterator[tuple[Any, ...]]:
    """COPY rows for one page. Well-formed items take a fast path; odd ones are described."""
    for item in items:
        if type(item) is dict and item.keys() == FIELD_SET:
            sku, on_hand, non_usable, allocated, available, seq = (item[f] for f in FIELDS)
            if type(sku) is str and type(available) is int and type(seq) is int \
                    and type(on_hand) is int and type(non_usable) is int and type(allocated) is int:
                yield (page_no, sku, on_hand, non_usable, allocated, available, seq, None, None)
                continue
        if not isinstance(item, dict):
            yield (page_no, None, None, None, None, None, None, ",".join(FIELDS), f"<{type(item).__name__}>")
            continue
        missing = ",".join(f for f in FIELDS if f not in item) or None
        extra = ",".join(sorted(str(k) for k in item if k not in FIELD_SET)) or None
        yield (page_no, *(_text(item.get(f)) for f in FIELDS), missing, extra)


def extract_to_staging(conn: psycopg.Connection, client: WmsClient, run_id: str) -> ExtractResult:
    """Walk the WMS snapshot into `stocksync.raw_<run key>`; commits when the walk is complete.

    The table is rebuilt on every call, so a retried or re-run extraction never mixes walks.
    """
    started = time.perf_counter()
    request_started_at = datetime.now(timezone.utc)
    table = raw_table(run_id)
    conn.execute(query("stocksync/create_raw_counts", raw=table))
    pages = rows = 0
    first: Page | None = None
    copy_sql = query("stocksync/copy_raw_counts", raw=table)
    for page in client.pages():
        first = first or page
        with conn.cursor().copy(copy_sql) as copy:
            for row in page_rows(pages, page.items):
                copy.write_row(row)
        pages += 1
        rows += len(page.items)
    conn.commit()
    assert first is not None  # pages() yields at least one page or raises
    result = ExtractResult(
        staging_table=table,
        snapshot_id=first.snapshot_id,
        snapshot_taken_at=parse_timestamp(first.snapshot_taken_at, "snapshot_taken_at"),
        orders_counted_until=parse_timestamp(first.orders_counted_until, "orders_counted_until"),
        request_started_at=request_started_at,
        pages=pages,
        rows=rows,
        seconds=time.perf_counter() - started,
    )
    log.info("extracted %d rows in %d pages from snapshot %s in %.2fs", rows, pages, result.snapshot_id,
             result.seconds)
    return result
