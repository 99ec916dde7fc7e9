"""The one WMS client's contract, which every caller of the WMS's HTTP API must pass: the snapshot
walk, the change feed, the order push and the storefront's live lookup. Each runs for real against
a scripted peer (tests/fault_servers.py) that rate-limits, fails, hangs, refuses our token, answers
a body that is not JSON or one that never ends, and against a port nobody listens on.

What each caller must do comes from the HTTP specification and the house rules, not from the
client's constants: a `Retry-After` of delay-seconds or an HTTP-date (RFC 9110 section 10.2.3) is
the wait (for the callers that wait; the live lookup never waits and reports it); 5xx, no answer
and timeouts are transient (`WmsUnavailable`), retried with backoff; 401 and a body that is not
JSON are permanent (`WmsContractError`), not retried; a body larger than the caller's bound is
refused inside the read (the peer could not send all of it). Every failure is one of the shared
error types, with a `cause` the storefront's counters read.

The callers get backoff 0.01 s and sleep into a list (nothing waits); the timeout case shortens
the client timeout to 0.3 s (the shipped http_timeout_seconds / wms_budget_ms would only be slower).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests

from include.stocksync.domain.errors import PermanentError, TransientError
from include.stocksync.wms.errors import WmsContractError, WmsError, WmsTransient, WmsUnavailable
from tests.fault_servers import DrippingServer, HangingServer, Scripted, ScriptedHttpServer, free_port

BACKOFF = 0.01
ATTEMPTS = 3
MIB = 1024 * 1024
NOW = datetime.now(timezone.utc).isoformat()


def session() -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = "Bearer contract-test-token"
    return s


@dataclass(frozen=True)
class Caller:
    """One WMS caller: a well-formed answer for it, and one call of it against `url` that returns
    what it read or raises; `waits` receives every pause it takes."""

    name: str
    waits_for_the_wms: bool  # False: the live lookup answers within its budget, never waits
    ok: bytes
    run: Callable[[str, list[float], float], Any]  # (url, waits, timeout)


def walk(url: str, waits: list[float], timeout: float) -> Any:
    from include.stocksync.wms.sources.base import WalkBounds
    from include.stocksync.wms.sources.http import WmsClient

    client = WmsClient(session(), url, page_size=10, timeout=timeout, attempts=ATTEMPTS, backoff=BACKOFF,
                       retry_after_max=30.0, sleep=waits.append)
    return list(client.pages(WalkBounds(4, time.monotonic() + 120, max_batch_bytes=MIB)))


def feed(url: str, waits: list[float], timeout: float) -> Any:
    from include.stocksync.wms.sources.base import WalkBounds
    from include.stocksync.wms.sources.feed import ChangeFeedSource

    source = ChangeFeedSource(session(), url, after_seq=0, page_size=10, timeout=timeout, attempts=ATTEMPTS,
                              backoff=BACKOFF, retry_after_max=30.0, sleep=waits.append)
    return source.walk(WalkBounds(4, time.monotonic() + 120, max_batch_bytes=MIB))


def order_push(url: str, waits: list[float], timeout: float) -> Any:
    """One order sent as the push and the cancellations send it: one attempt per call, retried by
    the shared policy within the run's deadline."""
    from include.stocksync.sync.order_push import WmsOrders
    from include.stocksync.wms.client import RetryPolicy, call

    client = WmsOrders(session(), url, timeout=timeout)
    return call(lambda: client.send("contract-1", [{"sku": "SKU-1", "qty": 1}]),
                RetryPolicy(ATTEMPTS, BACKOFF, 30.0), deadline=time.monotonic() + 120, sleep=waits.append)


def live_lookup(url: str, waits: list[float], timeout: float) -> Any:
    from include.stocksync.availability.wms import WmsClient

    async def lookup() -> Any:
        client = WmsClient(url, "contract-test-token", budget=timeout)
        await client.start()
        try:
            return await client.item("SKU-1")
        finally:
            await client.close()

    return asyncio.run(lookup())


CALLERS = [
    Caller("snapshot walk", True, json.dumps({
        "snapshot_id": "snap-1", "snapshot_taken_at": NOW, "orders_counted_until": NOW, "next_cursor": None,
        "items": [{"sku": "SKU-1", "on_hand": 5, "non_usable": 0, "allocated": 1, "available": 4, "seq": 7}],
    }).encode(), walk),
    Caller("change feed", True, json.dumps({
        "events": [], "head_seq": 0, "next_after_seq": 0, "taken_at": NOW, "orders_counted_until": NOW,
    }).encode(), feed),
    Caller("order push", True, json.dumps({
        "order_ref": "contract-1", "receipt_id": "r-1", "received_at": NOW,
    }).encode(), order_push),
    Caller("live lookup", False, json.dumps({
        "sku": "SKU-1", "on_hand": 5, "non_usable": 0, "allocated": 1, "available": 4, "seq": 7, "taken_at": NOW,
    }).encode(), live_lookup),
]


@pytest.fixture(params=CALLERS, ids=lambda caller: caller.name)
def caller(request: pytest.FixtureRequest) -> Caller:
    return request.param


@pytest.fixture
def peer() -> Iterator[Callable[[list[Scripted]], ScriptedHttpServer]]:
    started: list[ScriptedHttpServer] = []

    def start(script: list[Scripted]) -> ScriptedHttpServer:
        started.append(ScriptedHttpServer(script))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def rate_limited(retry_after: str) -> Scripted:
    return Scripted(429, b'{"error": "slow down"}', {"Retry-After": retry_after})


class TestEveryWmsCaller:
    """The contract, run for each caller (see the module docstring)."""

    @pytest.mark.parametrize(("form", "low", "high"), [
        ("seconds", 2.0, 2.0),    # Retry-After: 2
        ("http-date", 1.0, 3.0),  # Retry-After: <now + 3 s, whole seconds, GMT>: a wait of 2 to 3 s
    ])
    def test_a_429_waits_what_retry_after_says(self, caller: Caller, peer: Any, form: str, low: float,
                                               high: float) -> None:
        in_three_seconds = datetime.now(timezone.utc) + timedelta(seconds=3)
        retry_after = "2" if form == "seconds" else format_datetime(in_three_seconds, usegmt=True)
        server = peer([rate_limited(retry_after), Scripted(200, caller.ok)])
        waits: list[float] = []
        if caller.waits_for_the_wms:
            assert caller.run(server.url, waits, 10.0)
            assert len(waits) == 1 and low <= waits[0] <= high and len(server.requests) == 2
            return
        with pytest.raises(WmsTransient) as told:  # the live lookup reports the wait, falls back, never waits
            caller.run(server.url, waits, 1.0)
        assert told.value.rate_limited and low <= (told.value.retry_after or 0) <= high
        assert len(server.requests) == 1 and told.value.cause == "wms_error"

    def test_a_503_is_transient_and_retried_with_backoff(self, caller: Caller, peer: Any) -> None:
        server = peer([Scripted(503, b'{"error": "maintenance"}'), Scripted(200, caller.ok)])
        waits: list[float] = []
        if caller.waits_for_the_wms:
            assert caller.run(server.url, waits, 10.0)
            assert waits == [BACKOFF] and len(server.requests) == 2
            return
        with pytest.raises(WmsTransient) as told:
            caller.run(server.url, waits, 1.0)
        assert told.value.status == 503 and isinstance(told.value, TransientError)

    def test_connection_refused_is_transient_after_the_attempts(self, caller: Caller) -> None:
        waits: list[float] = []
        with pytest.raises(WmsUnavailable) as told:
            caller.run(f"http://127.0.0.1:{free_port()}", waits, 2.0)
        assert isinstance(told.value, TransientError) and told.value.cause == "wms_error"
        assert "Connect" in str(told.value.__cause__ or told.value)
        assert waits == ([BACKOFF, 2 * BACKOFF] if caller.waits_for_the_wms else [])

    def test_no_answer_in_time_is_a_transient_timeout(self, caller: Caller) -> None:
        hanging = HangingServer()
        waits: list[float] = []
        try:
            with pytest.raises(WmsUnavailable) as told:
                caller.run(f"http://127.0.0.1:{hanging.port}", waits, 0.3)
        finally:
            hanging.stop()
        assert isinstance(told.value, TransientError) and told.value.cause == "wms_timeout"
        assert waits == ([BACKOFF, 2 * BACKOFF] if caller.waits_for_the_wms else [])

    def test_an_answer_that_drips_ends_with_its_attempt(self, caller: Caller) -> None:
        """Headers at once, then the body one byte every 0.2 s: each socket read gets a byte inside
        the read timeout, so only a bound on the whole attempt ends it. Every attempt gives up long
        before the body is complete (it was read to its end, for as long as the WMS liked)."""
        dripping = DrippingServer(caller.ok + b" " * 200, interval=0.2)
        waits: list[float] = []
        try:
            with pytest.raises(WmsUnavailable) as told:
                caller.run(dripping.url, waits, 0.6)
        finally:
            dripping.stop()
        assert isinstance(told.value, TransientError) and told.value.cause == "wms_timeout"
        assert dripping.sent and all(sent < len(caller.ok) for sent in dripping.sent), dripping.sent

    def test_a_401_is_permanent_at_once_naming_the_token(self, caller: Caller, peer: Any) -> None:
        server = peer([Scripted(401, b'{"error": "unauthorized"}')])
        refused = refused_at_once(caller, server, "bearer token")
        assert refused.cause == "wms_auth" and len(server.requests) == 1

    def test_a_body_that_is_not_json_is_permanent_at_once(self, caller: Caller, peer: Any) -> None:
        server = peer([Scripted(200, b'{"items": [{"sku": "SKU-1", ')])
        refused = refused_at_once(caller, server, "not JSON")
        assert refused.cause == "wms_bad_answer" and len(server.requests) == 1

    def test_a_body_without_end_is_refused_inside_the_read(self, caller: Caller, peer: Any) -> None:
        endless = 256 * MIB  # no Content-Length: only reading tells how long it is
        server = peer([Scripted(200, b'{"items": [', stream_bytes=endless)])
        refused_at_once(caller, server, "more than the limit of")
        assert server.streamed < endless // 4  # the client stopped reading at its bound and hung up


def refused_at_once(caller: Caller, server: ScriptedHttpServer, match: str) -> WmsContractError:
    """The caller's permanent error for what `server` answers, raised without a retry or a wait."""
    waits: list[float] = []
    with pytest.raises(WmsContractError, match=match) as told:
        caller.run(server.url, waits, 10.0)
    assert isinstance(told.value, PermanentError) and waits == []
    return told.value


def test_every_failure_is_one_of_the_shared_error_types() -> None:
    """One set of exceptions: permanent and transient both are `WmsError`s with a cause."""
    assert issubclass(WmsContractError, WmsError) and issubclass(WmsUnavailable, WmsError)
    assert issubclass(WmsTransient, WmsUnavailable)
    assert issubclass(WmsContractError, PermanentError) and issubclass(WmsUnavailable, TransientError)
