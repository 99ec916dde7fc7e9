"""The one set of WMS error types, for every caller (the snapshot walk, the change feed, the order
push, the storefront's live lookup): what went wrong, whether retrying can help, and in one word
(`cause`) what kind of failure it was, for counters and fallback answers.

- `WmsContractError` (permanent): what the WMS sent breaks the contract or a bound, or it refused
  our credentials; retrying would get the same answer.
- `WmsUnavailable` (transient): the WMS did not answer usefully this time.
- `WmsTransient` (a `WmsUnavailable`): one request's transient failure, with the status (None when
  no answer came) and the `Retry-After` the WMS asked for, which the retry policy reads.
"""

from __future__ import annotations

from include.stocksync.domain.errors import PermanentError, TransientError

RATE_LIMITED = 429


class WmsError(Exception):
    """The WMS could not be read; the message says why and what to do."""

    cause = "wms_error"

    def __init__(self, message: str, *, cause: str | None = None) -> None:
        super().__init__(message)
        if cause is not None:
            self.cause = cause


class WmsContractError(WmsError, PermanentError):
    """What the WMS sent breaks the contract or a bound: retrying would get the same answer."""

    cause = "wms_bad_answer"


class WmsUnavailable(WmsError, TransientError):
    """The WMS did not answer usefully this time (connection, timeout, 429, 5xx, expired cursor)."""


class WmsTransient(WmsUnavailable):
    """A WMS call that may succeed later: `status` None when no answer came; `retry_after` the
    seconds the WMS asked us to wait (None when it did not say)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 cause: str | None = None) -> None:
        super().__init__(message, cause=cause)
        self.status = status
        self.retry_after = retry_after

    @property
    def rate_limited(self) -> bool:
        return self.status == RATE_LIMITED


class WmsDeadlinePassed(WmsTransient):
    """The next try of a request would start after the caller's deadline: the request gave up
    (the caller says what its deadline is and what to configure)."""
