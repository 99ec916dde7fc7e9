"""The one WMS client: base URL, auth, timeouts, the retry policy, bounded reads and strict
decoding, for every caller of the WMS's HTTP API (the snapshot walk `sources/http.py`, the change
feed `sources/feed.py`, the order push `sync/order_push.py` with `WmsHttp`; the storefront's live
lookup `availability/wms.py` with its async twin `AsyncWmsHttp`, sharing the policy, the status
sets and the error types of `wms/errors.py`; docs/wms-contract.md, "The WMS client").

- **Which answers are worth a retry** (`check_status`): no answer (connection refused or reset, a
  timeout) and `429` and `500/502/503/504` are transient (`WmsTransient`, carrying the WMS's
  `Retry-After`); `401/403` are permanent and say which credential to fix (`WmsContractError`);
  every other status is the caller's to read (a refusal such as 409/422 is an answer, not a fault;
  `Reply.unexpected` names one the caller does not expect, permanently). Redirects are not followed.
- **How much is read**: every body is read within a byte bound, inside the read (a declared
  `Content-Length` over it is refused before reading; a body without one is cut off as soon as it
  passes the bound): the caller's bound for an answer it reads, `FAULT_BODY_BYTES` of a fault's
  body to name it. A body that is not JSON is a permanent contract error (`decode_json`).
- **How long to wait** (`RetryPolicy.pause`): exponential backoff from `http_backoff_seconds`,
  doubled per failure in a row; when the WMS says `Retry-After` (delay-seconds or an HTTP-date,
  RFC 9110 section 10.2.3) and asks for longer, its wait is honoured up to
  `retry_after_max_seconds`, never more (a hostile or broken header cannot park a run).
- **How often** (`Retries`): a request is tried `attempts` times for failures; a `429` is the WMS
  asking us to slow down, not a failure of the request, so it does not use up attempts when the
  caller has a deadline: it is bounded by that time budget instead. The first failure's cause is
  kept, so the error raised at the end says what went wrong first, not only last. A next try that
  would start after the caller's deadline is not made (`WmsDeadlinePassed`).

The storefront's live lookup uses the same loop with one attempt and a backoff as long as its
budget: it never waits for a WMS (it answers within milliseconds and falls back to the shop's figure).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import requests
import urllib3

from include.stocksync.wms.errors import (
    RATE_LIMITED,
    WmsContractError,
    WmsDeadlinePassed,
    WmsTransient,
)

if TYPE_CHECKING:
    import aiohttp

    from include.stocksync.config.settings import Settings

__all__ = ["CREDENTIAL_STATUSES", "RATE_LIMITED", "TRANSIENT_STATUSES", "AsyncWmsHttp", "Reply", "Retries",
           "RetryPolicy", "WmsHttp", "WmsTransient", "call", "check_status", "decode_json", "no_answer",
           "retry_after_seconds"]

TRANSIENT_STATUSES = frozenset({408, RATE_LIMITED, 500, 502, 503, 504})  # 408: the WMS timed out waiting for us
CREDENTIAL_STATUSES = frozenset({401, 403})
# a Retry-After value longer than this is not one the RFC allows (a date is 29 characters)
RETRY_AFTER_MAX_CHARS = 64
# what is read of a fault answer's body (a 5xx, a 401): enough to name it in the error
FAULT_BODY_BYTES = 2000
READ_CHUNK_BYTES = 1 << 20  # a page of 10,000 items is about a megabyte
T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_after_seconds(value: Any, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds (ASCII digits) or an HTTP-date (a date in
    the past is 0). None when absent, too long, or neither form: the caller's backoff applies."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > RETRY_AFTER_MAX_CHARS:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def check_status(status: int, headers: Mapping[str, str], body: str, where: str) -> None:
    """Raise for an answer that is a fault (see the module docstring); return for one the caller reads."""
    if status in TRANSIENT_STATUSES:
        raise WmsTransient(f"{where}: HTTP {status}: {body[:300]}", status=status,
                           retry_after=retry_after_seconds(headers.get("Retry-After")))
    if status in CREDENTIAL_STATUSES:
        raise WmsContractError(f"WMS refused our credentials (HTTP {status}) at {where}: check the WMS bearer "
                               "token (the password of the WMS Airflow Connection; STOCKSYNC_AVAILABILITY_WMS_TOKEN "
                               "for the storefront service)", cause="wms_auth")


def no_answer(exc: BaseException, where: str, *, timed_out: bool = False) -> WmsTransient:
    """A connection error or timeout as a transient failure (the request may have arrived)."""
    return WmsTransient(f"{where}: {type(exc).__name__}: {exc}"[:1000],
                        cause="wms_timeout" if timed_out else "wms_error")


def decode_json(content: bytes, where: str) -> Any:
    """A WMS answer's JSON; a body that is not JSON is a permanent contract error."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        # orjson refuses NaN/Infinity and lone surrogates; the stdlib keeps them so validation
        # can name the value instead of the page failing as a whole
        try:
            return json.loads(content)
        except (ValueError, RecursionError) as exc:
            raise WmsContractError(f"{where}: the WMS answered a body that is not JSON: {exc}") from exc


def too_large(where: str, limit: int, size: int | None = None) -> WmsContractError:
    told = f"is {size} bytes, more" if size is not None else "is more"
    return WmsContractError(f"{where}: the WMS's answer {told} than the limit of {limit} bytes (config "
                            "max_page_bytes for stock and feed pages; receipts and live lookups have fixed bounds)")


def declared_size(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value and value.isascii() and value.isdigit() else None


class BodyLimit:
    """The bytes of one body, read chunk by chunk up to `limit`: `cut` keeps the first `limit`
    bytes (a fault's body, only to name it), else a body past the limit is refused mid-read."""

    def __init__(self, limit: int, where: str, *, cut: bool) -> None:
        self.limit, self.where, self.cut = limit, where, cut
        self.chunks: list[bytes] = []
        self.size = 0

    def check_declared(self, headers: Mapping[str, str]) -> None:
        declared = declared_size(headers)
        if not self.cut and declared is not None and declared > self.limit:
            raise too_large(self.where, self.limit, declared)

    def add(self, chunk: bytes) -> bool:
        """Keep `chunk`; False when the bound is reached (stop reading)."""
        room = self.limit - self.size
        self.size += len(chunk)
        if len(chunk) <= room:
            self.chunks.append(chunk)
            return True
        if not self.cut:
            raise too_large(self.where, self.limit)
        self.chunks.append(chunk[:room])
        return False

    def content(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True)
class Reply:
    """An answer the caller reads (not a fault): its status and its body, read within the bound."""

    status: int
    content: bytes
    url: str

    def text(self, limit: int = FAULT_BODY_BYTES) -> str:
        return self.content[:limit].decode("utf-8", "replace")

    def json(self, where: str) -> Any:
        return decode_json(self.content, where)

    def unexpected(self, where: str, *, cause: str | None = None) -> WmsContractError:
        """The error for a status the caller does not read (permanent: the same request gets it again)."""
        return WmsContractError(f"WMS answered HTTP {self.status} at {where} ({self.url}): {self.text()[:300]}",
                                cause=cause)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int             # tries of one request for failures other than a rate limit
    backoff: float            # the first pause; doubled per failure in a row
    retry_after_max: float    # a longer Retry-After is cut to this
    backoff_max: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings, *, attempts: int | None = None) -> RetryPolicy:
        return cls(attempts or settings.http_attempts, settings.http_backoff_seconds,
                   settings.retry_after_max_seconds)

    def pause(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after `failures` failures in a row, the last saying `retry_after`."""
        backoff = min(self.backoff * 2 ** min(max(failures, 1) - 1, 30), self.backoff_max)
        if retry_after is None or not math.isfinite(retry_after):
            return backoff
        return max(backoff, min(retry_after, self.retry_after_max))


@dataclass
class Retries:
    """The failures in a row of one request: the pause before the next try, whether its attempts
    are used up, and the first failure's cause. `rate_limits_count`: a 429 uses up an attempt too
    (for a caller without a deadline, whose waits nothing else bounds)."""

    policy: RetryPolicy
    rate_limits_count: bool = False
    in_a_row: int = 0
    counted: int = 0            # failures that use up attempts (a rate limit does not)
    rate_limited: int = 0       # 429 answers seen
    first_cause: str | None = None

    def failed(self, exc: WmsTransient) -> float:
        """Count `exc`; returns the pause before the next try."""
        self.in_a_row += 1
        if exc.rate_limited:
            self.rate_limited += 1
        if not exc.rate_limited or self.rate_limits_count:
            self.counted += 1
        if self.first_cause is None:
            self.first_cause = str(exc)
        return self.policy.pause(self.in_a_row, exc.retry_after)

    @property
    def exhausted(self) -> bool:
        return self.counted >= self.policy.attempts

    def succeeded(self) -> None:
        self.in_a_row = self.counted = 0
        self.first_cause = None

    def describe(self, last: BaseException) -> str:
        """The failures as one line: how many, the first cause, and the last when it differs."""
        first = self.first_cause or str(last)
        told = f"{self.in_a_row} failure(s) in a row ({self.rate_limited} rate limited); first: {first}"
        return told if str(last) == first else f"{told}; last: {last}"

    def next_try(self, exc: WmsTransient, *, deadline: float | None, what: str = "") -> float:
        """Count `exc` and return the pause before the next try; raise when there is none: the
        attempts are used up (`WmsTransient`: "unreachable after N attempts", naming the first
        cause) or the next try would start after `deadline` (`WmsDeadlinePassed`)."""
        pause = self.failed(exc)
        at = f" at {what}" if what else ""
        if self.exhausted:
            raise WmsTransient(f"WMS unreachable after {self.in_a_row} attempts{at}: {self.describe(exc)}",
                               status=exc.status, retry_after=exc.retry_after, cause=exc.cause) from exc
        if deadline is not None and time.monotonic() + pause > deadline:
            raise WmsDeadlinePassed(f"the next attempt{at} ({pause:.1f} s away) would pass the deadline: "
                                    f"{self.describe(exc)}", status=exc.status, retry_after=exc.retry_after,
                                    cause=exc.cause) from exc
        return pause


def call(attempt: Callable[[], T], policy: RetryPolicy, *, deadline: float | None = None,
         sleep: Callable[[float], None] = time.sleep) -> T:
    """`attempt()` until it returns, retrying transient failures (pauses as the policy says) while
    attempts are left and the next try starts before `deadline` (time.monotonic()); then raises
    `WmsTransient` naming the first cause."""
    retries = Retries(policy)
    while True:
        try:
            return attempt()
        except WmsTransient as exc:
            sleep(retries.next_try(exc, deadline=deadline))


def _attempt_timeout(timeout: float, deadline: float | None) -> float:
    """One attempt's timeout: the client's, shortened to what is left before the deadline."""
    return timeout if deadline is None else max(0.5, min(timeout, deadline - time.monotonic()))


def arriving(response: requests.Response) -> Iterator[bytes]:
    """A streamed response's body as it arrives: each chunk what one read of the socket brought
    (decoded, at most READ_CHUNK_BYTES), so the caller sees a body that drips while it drips
    (`iter_content` waits to fill each chunk). urllib3's errors as the requests errors
    `iter_content` would raise."""
    raw = response.raw
    try:
        while chunk := raw.read1(READ_CHUNK_BYTES, decode_content=True):
            yield chunk
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.Timeout(str(exc)) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(str(exc)) from exc
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError) as exc:
        raise requests.ConnectionError(str(exc)) from exc


@dataclass
class WmsHttp:
    """The WMS's HTTP API over a `requests.Session` carrying the auth (the bearer token of the WMS
    Airflow Connection): `once` is one attempt, `request` retries it as the policy says and records
    every failed attempt in `failures` (the run record's retries)."""

    session: requests.Session
    base_url: str
    policy: RetryPolicy
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def once(self, method: str, path: str, *, where: str, max_bytes: int, deadline: float | None = None,
             params: Mapping[str, Any] | None = None, json_body: Any = None,
             headers: Mapping[str, str] | None = None) -> Reply:
        """One attempt: the `Reply` for an answer the caller reads; `WmsTransient` for no answer or
        a transient status; `WmsContractError` for refused credentials or a body over `max_bytes`.
        The whole attempt, its body included, ends within its timeout (shortened to the deadline):
        the socket's timeout bounds each read only, and a WMS that sends a byte now and then would
        hold one answer, and the walk waiting for it, for as long as it liked."""
        url = f"{self.base_url}{path}"
        seconds = _attempt_timeout(self.timeout, deadline)
        ends = time.monotonic() + seconds
        try:
            response = self.session.request(method, url, params=params, json=json_body, headers=headers,
                                            timeout=seconds, stream=True, allow_redirects=False)
        except requests.Timeout as exc:
            raise no_answer(exc, where, timed_out=True) from exc
        except requests.ConnectionError as exc:
            raise no_answer(exc, where) from exc
        try:
            fault = response.status_code in TRANSIENT_STATUSES or response.status_code in CREDENTIAL_STATUSES
            # an answer other than 2xx is read for its reason only: cut at the bound, never refused for it
            body = BodyLimit(FAULT_BODY_BYTES if fault else max_bytes, where,
                             cut=fault or not 200 <= response.status_code < 300)
            body.check_declared(response.headers)
            for chunk in arriving(response):
                if not body.add(chunk):
                    break
                if time.monotonic() > ends:
                    raise requests.Timeout(f"the answer was still arriving {seconds:.1f} s after the request "
                                           f"({body.size} bytes so far)")
        except requests.Timeout as exc:  # the body stopped coming, or took longer than the attempt may
            raise no_answer(exc, where, timed_out=True) from exc
        except requests.RequestException as exc:
            raise no_answer(exc, where) from exc
        finally:
            response.close()
        content = body.content()
        if fault:  # only a fault's (short) body is text for its message
            check_status(response.status_code, response.headers, content.decode("utf-8", "replace"), where)
        return Reply(response.status_code, content, url)

    def request(self, method: str, path: str, *, where: str, max_bytes: int, deadline: float | None = None,
                **kwargs: Any) -> Reply:
        """`once`, retried for transient failures while the policy and `deadline` allow (see `Retries`)."""
        retries = Retries(self.policy, rate_limits_count=deadline is None)
        while True:
            try:
                return self.once(method, path, where=where, max_bytes=max_bytes, deadline=deadline, **kwargs)
            except WmsTransient as exc:
                self.failures.append(f"{where} attempt {retries.in_a_row + 1}/{self.policy.attempts}: {exc}"[:1000])
                pause = retries.next_try(exc, deadline=deadline, what=f"{self.base_url}{path} ({where})")
                log.warning("WMS request failed (%s), %d failure(s) in a row, retrying in %.2fs", exc,
                            retries.in_a_row, pause)
                self.sleep(pause)


class AsyncWmsHttp:
    """The async twin of `WmsHttp` (aiohttp, for the storefront's event loop): the same policy,
    status sets, bounded reads and error types. `timeout` bounds each whole attempt."""

    def __init__(self, base_url: str, token: str, *, policy: RetryPolicy, timeout: float, connections: int = 32,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.timeout = timeout
        self.sleep = sleep
        self._token = token
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector,
                                              headers={"Authorization": f"Bearer {self._token}"},
                                              timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def once(self, method: str, path: str, *, where: str, max_bytes: int,
                   deadline: float | None = None) -> Reply:
        """One attempt, classified and bounded as `WmsHttp.once`; no answer within the attempt's
        time (`timeout`, shortened to the deadline) is a `WmsTransient` caused `wms_timeout`."""
        import aiohttp

        if self._session is None:
            raise WmsTransient(f"{where}: the WMS client is not started")
        url = f"{self.base_url}{path}"
        seconds = self.timeout if deadline is None else max(0.0, min(self.timeout, deadline - time.monotonic()))
        try:
            async with asyncio.timeout(seconds):
                async with self._session.request(method, url, allow_redirects=False) as response:
                    status = response.status
                    fault = status in TRANSIENT_STATUSES or status in CREDENTIAL_STATUSES
                    body = BodyLimit(FAULT_BODY_BYTES if fault else max_bytes, where,
                                     cut=fault or not 200 <= status < 300)
                    body.check_declared(response.headers)
                    async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
                        if not body.add(chunk):
                            break
                    headers = response.headers
        except TimeoutError as exc:
            raise WmsTransient(f"{where}: no answer within {seconds * 1000:.0f} ms", cause="wms_timeout") from exc
        except aiohttp.ClientError as exc:
            raise no_answer(exc, where) from exc
        content = body.content()
        if fault:
            check_status(status, headers, content.decode("utf-8", "replace"), where)
        return Reply(status, content, url)

    async def request(self, method: str, path: str, *, where: str, max_bytes: int,
                      deadline: float | None = None) -> Reply:
        """`once`, retried as `WmsHttp.request` does (the same `Retries`)."""
        retries = Retries(self.policy, rate_limits_count=deadline is None)
        while True:
            try:
                return await self.once(method, path, where=where, max_bytes=max_bytes, deadline=deadline)
            except WmsTransient as exc:
                await self.sleep(retries.next_try(exc, deadline=deadline, what=f"{self.base_url}{path} ({where})"))
