"""Live mode's read of one SKU from the WMS (`GET /v1/stock/items/{sku}`), within a hard budget.

The storefront is waiting, so the WMS gets `wms_budget_ms` and not a millisecond more: past it,
or on any error, the caller answers from the shop's number (which is what checkout accepts
anyway). The answer is checked as strictly as the nightly sync checks a snapshot row (integers,
none negative, `available = on_hand - non_usable - allocated`, the SKU we asked for, a timestamp
with a zone): a figure we cannot trust is never written to the shop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

MAX_ANSWER_BYTES = 64 * 1024


class WmsUnavailable(Exception):
    """No usable figure: `cause` is wms_timeout, wms_error, wms_auth, wms_unknown_sku or wms_bad_answer."""

    def __init__(self, cause: str, detail: str) -> None:
        super().__init__(detail)
        self.cause = cause


@dataclass(frozen=True)
class WmsItem:
    sku: str
    on_hand: int
    non_usable: int
    allocated: int
    available: int
    seq: int
    taken_at: datetime


def parse_item(sku: str, body: Any) -> WmsItem:
    """The WMS's single-item answer, checked (see the module docstring)."""
    if not isinstance(body, dict):
        raise WmsUnavailable("wms_bad_answer", "the answer is not a JSON object")
    if body.get("sku") != sku:
        raise WmsUnavailable("wms_bad_answer", f"asked for {sku!r}, got {str(body.get('sku'))[:80]!r}")
    values: dict[str, int] = {}
    for name in ("on_hand", "non_usable", "allocated", "available", "seq"):
        value = body.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**62:
            raise WmsUnavailable("wms_bad_answer", f"{name} is not a non-negative integer: {str(value)[:40]!r}")
        values[name] = value
    if values["available"] != values["on_hand"] - values["non_usable"] - values["allocated"]:
        raise WmsUnavailable("wms_bad_answer", "available is not on_hand - non_usable - allocated")
    try:
        taken_at = datetime.fromisoformat(str(body.get("taken_at")))
    except ValueError as exc:
        raise WmsUnavailable("wms_bad_answer", "taken_at is not an ISO-8601 time") from exc
    if taken_at.tzinfo is None:
        raise WmsUnavailable("wms_bad_answer", "taken_at has no time zone")
    return WmsItem(sku=sku, taken_at=taken_at, **values)


class WmsClient:
    def __init__(self, base_url: str, token: str, budget: float, connections: int = 32) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self._token = token
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(connector=connector,
                                              headers={"Authorization": f"Bearer {self._token}"},
                                              timeout=aiohttp.ClientTimeout(total=None))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def item(self, sku: str) -> WmsItem:
        if self._session is None:
            raise WmsUnavailable("wms_error", "WMS client not started")
        url = f"{self.base_url}/v1/stock/items/{quote(sku, safe='')}"
        try:
            async with asyncio.timeout(self.budget):
                async with self._session.get(url, allow_redirects=False) as response:
                    status = response.status
                    body = await response.content.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError as exc:
            raise WmsUnavailable("wms_timeout", f"no answer within {self.budget * 1000:.0f} ms") from exc
        except aiohttp.ClientError as exc:
            raise WmsUnavailable("wms_error", f"{type(exc).__name__}: {exc}"[:200]) from exc
        if status == 404:
            raise WmsUnavailable("wms_unknown_sku", f"the WMS does not know {sku!r}")
        if status in (401, 403):
            raise WmsUnavailable("wms_auth", f"the WMS refused our token (HTTP {status})")
        if status != 200:
            raise WmsUnavailable("wms_error", f"HTTP {status}")
        if len(body) > MAX_ANSWER_BYTES:
            raise WmsUnavailable("wms_bad_answer", "answer too large")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise WmsUnavailable("wms_bad_answer", "the answer is not JSON") from exc
        return parse_item(sku, parsed)
