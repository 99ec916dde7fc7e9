"""One response and retry policy for the WMS's HTTP API, for every caller that retries (the order
push, the snapshot walk; docs/wms-contract.md, "Retries").

- **Which answers are worth a retry** (`check_status`): no answer (connection refused or reset, a
  timeout) and `429` and `500/502/503/504` are transient (`WmsTransient`, carrying the WMS's
  `Retry-After`); `401/403` are permanent and say which credential to fix (`WmsContractError`);
  every other status is the caller's to read (a refusal such as 409/422 is an answer, not a fault).
- **How long to wait** (`RetryPolicy.pause`): exponential backoff from `http_backoff_seconds`,
  doubled per failure in a row; when the WMS says `Retry-After` (delay-seconds or an HTTP-date,
  RFC 9110 section 10.2.3) and asks for longer, its wait is honoured up to
  `retry_after_max_seconds`, never more (a hostile or broken header cannot park a run).
- **How often** (`Retries`): a request is tried `attempts` times for failures; a `429` is the WMS
  asking us to slow down, not a failure of the request, so it does not use up attempts: it is
  bounded by the caller's time budget instead. The first failure's cause is kept, so the error
  raised at the end says what went wrong first, not only last.

The storefront's live read (`availability/wms.py`) has no retry loop on purpose: it answers within
a few milliseconds' budget and falls back to the shop's figure, so it never waits for a WMS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from include.stocksync.wms.sources.base import WmsContractError, WmsUnavailable

if TYPE_CHECKING:
    from include.stocksync.config.settings import Settings

RATE_LIMITED = 429
TRANSIENT_STATUSES = frozenset({RATE_LIMITED, 500, 502, 503, 504})
CREDENTIAL_STATUSES = frozenset({401, 403})
# a Retry-After value longer than this is not one the RFC allows (a date is 29 characters)
RETRY_AFTER_MAX_CHARS = 64
T = TypeVar("T")


class WmsTransient(WmsUnavailable):
    """A WMS call that may succeed later: `status` None when no answer came; `retry_after` the
    seconds the WMS asked us to wait (None when it did not say)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == RATE_LIMITED


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
        raise WmsContractError(f"WMS refused our credentials (HTTP {status}) at {where}: check the password "
                               "(bearer token) of the WMS Airflow Connection")


def no_answer(exc: BaseException, where: str) -> WmsTransient:
    """A connection error or timeout as a transient failure (the request may have arrived)."""
    return WmsTransient(f"{where}: {type(exc).__name__}: {exc}")


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
    are used up, and the first failure's cause."""

    policy: RetryPolicy
    in_a_row: int = 0
    counted: int = 0            # failures that use up attempts (a rate limit does not)
    rate_limited: int = 0       # 429 answers seen
    first_cause: str | None = None

    def failed(self, exc: WmsTransient) -> float:
        """Count `exc`; returns the pause before the next try."""
        self.in_a_row += 1
        if exc.rate_limited:
            self.rate_limited += 1
        else:
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
            pause = retries.failed(exc)
            if retries.exhausted or (deadline is not None and time.monotonic() + pause > deadline):
                raise WmsTransient(retries.describe(exc), status=exc.status, retry_after=exc.retry_after) from exc
            sleep(pause)
