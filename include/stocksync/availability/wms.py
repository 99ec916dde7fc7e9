"""Live mode's read of one SKU from the WMS (`GET /v1/stock/items/{sku}`), within a hard budget.

The storefront is waiting, so the WMS gets `wms_budget_ms` and not a millisecond more: past it,
or on any error, the caller answers from the shop's number (which is what checkout accepts
anyway). The answer is checked as strictly as the nightly sync checks a snapshot row (integers,
none negative, `available = on_hand - non_usable - allocated`, the SKU we asked for, a timestamp
with a zone): a figure we cannot trust is never written to the shop.

The request goes through the one WMS client's async twin (`wms/client.py`, `AsyncWmsHttp`): the
same status sets, bounded read and error types as the sync's; its policy is one attempt with a
backoff as long as the budget, so nothing is retried and nothing waits. Every failure is a
`WmsError` whose `cause` (wms_timeout, wms_error, wms_auth, wms_unknown_sku, wms_bad_answer)
the answer and the counters carry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from include.stocksync.wms.client import AsyncWmsHttp, RetryPolicy
from include.stocksync.wms.errors import WmsContractError, WmsError, WmsTransient
from include.stocksync.wms.sources.base import parse_timestamp

MAX_ANSWER_BYTES = 64 * 1024
ITEM_PATH = "/v1/stock/items/{sku}"


def bad_answer(detail: str) -> WmsContractError:
    return WmsContractError(detail, cause="wms_bad_answer")


def fallback_detail(exc: WmsError) -> str:
    """What the storefront's answer says of a failed lookup: the kind of failure, never the text a
    fault's body carried (the WMS's words are not passed on to the storefront)."""
    if isinstance(exc, WmsTransient) and exc.status is not None:
        return f"HTTP {exc.status}" + (" (rate limited)" if exc.rate_limited else "")
    first = exc.__cause__ if isinstance(exc, WmsTransient) and isinstance(exc.__cause__, WmsError) else exc
    return str(first)[:200]


@dataclass(frozen=True)
class WmsItem:
    sku: str
    on_hand: int
    non_usable: int
    allocated: int
    available: int
    seq: int
    taken_at: datetime


def parse_item(sku: str, body: Any, *, max_quantity: int = 1_000_000_000, clock_skew_seconds: float = 120.0,
               now: datetime | None = None) -> WmsItem:
    """The WMS's single-item answer, checked as the nightly checks a snapshot (see the module
    docstring): quantities whole, from 0 to `max_quantity` (the validation's bound: live mode would
    otherwise write, and answer, a figure the nightly refuses), the sequence a non-negative
    integer, `taken_at` a plausible time with its zone and not after now beyond the clock skew (it is
    the watermark of the orders subtracted: a time in the future counted orders the WMS never saw)."""
    if not isinstance(body, dict):
        raise bad_answer("the answer is not a JSON object")
    if body.get("sku") != sku:
        raise bad_answer(f"asked for {sku!r}, got {str(body.get('sku'))[:80]!r}")
    values: dict[str, int] = {}
    for name in ("on_hand", "non_usable", "allocated", "available", "seq"):
        value = body.get(name)
        bound = 2**62 if name == "seq" else max_quantity
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= bound:
            raise bad_answer(f"{name} is not an integer from 0 to {bound}: {str(value)[:40]!r}")
        values[name] = value
    if values["available"] != values["on_hand"] - values["non_usable"] - values["allocated"]:
        raise bad_answer("available is not on_hand - non_usable - allocated")
    try:
        taken_at = parse_timestamp(body.get("taken_at"), "taken_at")
    except WmsContractError as exc:
        raise bad_answer(str(exc)) from exc
    if taken_at is None:
        raise bad_answer("taken_at is missing")
    if taken_at > (now or datetime.now(timezone.utc)) + timedelta(seconds=clock_skew_seconds):
        raise bad_answer(f"taken_at {taken_at.isoformat()} is in the future (beyond the clock skew of "
                         f"{clock_skew_seconds:g} s)")
    return WmsItem(sku=sku, taken_at=taken_at, **values)


class WmsClient:
    """`GET /v1/stock/items/{sku}` within `budget` seconds (see the module docstring)."""

    def __init__(self, base_url: str, token: str, budget: float, connections: int = 32, *,
                 max_quantity: int = 1_000_000_000, clock_skew_seconds: float = 120.0) -> None:
        self.budget = budget
        self.max_quantity = max_quantity
        self.clock_skew_seconds = clock_skew_seconds
        # one attempt; a pause as long as the budget never fits in it, so a 429 is not waited for
        self.http = AsyncWmsHttp(base_url, token, policy=RetryPolicy(1, budget, budget), timeout=budget,
                                 connections=connections)

    async def start(self) -> None:
        await self.http.start()

    async def close(self) -> None:
        await self.http.close()

    async def item(self, sku: str) -> WmsItem:
        path = ITEM_PATH.format(sku=quote(sku, safe=""))
        where = f"GET {path}"
        reply = await self.http.request("GET", path, where=where, max_bytes=MAX_ANSWER_BYTES,
                                        deadline=time.monotonic() + self.budget)
        if reply.status == 404:
            raise WmsError(f"the WMS does not know {sku!r}", cause="wms_unknown_sku")
        if reply.status != 200:
            raise WmsContractError(f"{where}: HTTP {reply.status}", cause="wms_error")
        return parse_item(sku, reply.json(where), max_quantity=self.max_quantity,
                          clock_skew_seconds=self.clock_skew_seconds)
