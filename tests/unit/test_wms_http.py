"""The one WMS response and retry policy (`include/stocksync/wms/client.py`): Retry-After in both forms
RFC 9110 section 10.2.3 allows, and nothing else; the wait capped; a rate limit that does not use up
a request's attempts; the first cause kept."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from include.stocksync.wms.client import Retries, RetryPolicy, WmsTransient, call, check_status, retry_after_seconds
from include.stocksync.wms.sources.base import WmsContractError

NOW = datetime(1999, 12, 31, 23, 58, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize(("header", "seconds"), [
    ("120", 120.0),                              # delay-seconds
    (" 7 ", 7.0),
    ("0", 0.0),
    ("Fri, 31 Dec 1999 23:59:59 GMT", 60.0),     # the RFC's own HTTP-date example, a minute after NOW
    ("Friday, 31-Dec-99 23:59:59 GMT", 60.0),    # the obsolete RFC 850 form a recipient must accept
    ("Fri, 31 Dec 1999 23:00:00 GMT", 0.0),      # a date already past: no wait
])
def test_retry_after_in_both_forms(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "²", "٣", "9" * 65, 12,
                                    "Fri, 32 Dec 1999 25:61 GMT"])
def test_retry_after_that_is_neither_form_is_ignored(header: object) -> None:
    assert retry_after_seconds(header, now=NOW) is None


def test_the_wait_is_backoff_or_retry_after_capped() -> None:
    policy = RetryPolicy(attempts=3, backoff=0.5, retry_after_max=30.0)
    assert [policy.pause(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert policy.pause(1, 12.0) == 12.0          # the WMS asks for longer: honoured
    assert policy.pause(4, 1.0) == 4.0            # shorter than our backoff: the backoff
    assert policy.pause(1, 86400.0) == 30.0       # a day: cut to retry_after_max
    assert policy.pause(1, float("inf")) == 0.5
    assert RetryPolicy(3, 0.5, 30.0, backoff_max=8.0).pause(200) == 8.0


def test_statuses_are_classified() -> None:
    with pytest.raises(WmsTransient) as limited:
        check_status(429, {"Retry-After": "3"}, "slow down", "POST /v1/orders")
    assert (limited.value.rate_limited, limited.value.retry_after) == (True, 3.0)
    with pytest.raises(WmsTransient) as down:
        check_status(503, {}, "maintenance", "POST /v1/orders")
    assert (down.value.rate_limited, down.value.retry_after, down.value.status) == (False, None, 503)
    with pytest.raises(WmsTransient) as timed_out:  # the WMS gave up waiting for our request: send it again
        check_status(408, {}, "request timeout", "POST /v1/orders")
    assert timed_out.value.status == 408
    with pytest.raises(WmsContractError, match="bearer token"):
        check_status(401, {}, "", "POST /v1/orders")
    for answer in (200, 201, 404, 409, 422):
        check_status(answer, {}, "", "POST /v1/orders")  # the caller reads these


def test_a_rate_limit_uses_no_attempts_and_the_first_cause_is_kept() -> None:
    retries = Retries(RetryPolicy(attempts=2, backoff=0.1, retry_after_max=30.0))
    for _ in range(5):
        retries.failed(WmsTransient("HTTP 429", status=429, retry_after=1.0))
    assert not retries.exhausted
    retries.failed(WmsTransient("HTTP 503 first failure", status=503))
    assert not retries.exhausted
    last = WmsTransient("ConnectionError: refused")
    retries.failed(last)
    assert retries.exhausted
    told = retries.describe(last)
    assert "first: HTTP 429" in told and "last: ConnectionError: refused" in told and "7 failure(s)" in told
    retries.succeeded()
    assert not retries.exhausted and retries.first_cause is None


def test_call_retries_within_attempts_then_raises_naming_the_first_cause() -> None:
    waits: list[float] = []
    answers = iter([WmsTransient("HTTP 429", status=429, retry_after=2.0), WmsTransient("HTTP 502", status=502)])

    def attempt() -> str:
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return "receipt"

    policy = RetryPolicy(attempts=2, backoff=0.25, retry_after_max=30.0)
    assert call(attempt, policy, sleep=waits.append) == "receipt"
    assert waits == [2.0, 0.5]

    def broken() -> str:
        raise WmsTransient(f"HTTP 500 number {len(waits)}", status=500)

    waits.clear()
    with pytest.raises(WmsTransient, match="first: HTTP 500 number 0") as gave_up:
        call(broken, policy, sleep=waits.append)
    assert waits == [0.25] and "last: HTTP 500 number 1" in str(gave_up.value)
