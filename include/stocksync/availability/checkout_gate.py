"""The checkout gate: `GET /checkout-freeze`, asked by the web server in front of a shop whose
checkout code stocksync cannot change (Magento 2, PrestaShop: deploy/nginx/, docs/platforms-freeze.md).

nginx's `auth_request` asks this route before every checkout request and lets the request through
on 2xx, refuses it on 401/403 and treats anything else as an error. So the answers are:

- `204` checkout open (`X-Stocksync-Checkout: open`);
- `403` checkout frozen (`frozen`), with the freeze's shopper message ready for the page nginx
  answers (`X-Stocksync-Freeze-Html`: HTML text; `X-Stocksync-Freeze-Json`: a JSON string) and
  `X-Stocksync-Retry-After` (whole seconds until the last active freeze expires, at least 1);
- `503` stocksync cannot tell (`unknown`: the database down, slow or failing): nginx applies the
  merchant's fail-open/fail-closed choice, as when this service does not answer at all;
- `401` the caller may not ask (IP range, secret): never 403, which would read as "frozen".

The freeze state is cached per worker for `FREEZE_CACHE_MS` (never past the freeze's own expiry),
and one query at a time refreshes it: however many checkouts arrive, each worker asks the
database at most once per `FREEZE_CACHE_MS`. A freeze committed, released or expired is seen at
most `FREEZE_CACHE_MS` later. The rate limit of the inventory script does not apply (every
checkout of the shop arrives from the web server's one address); the IP range and the secret do.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import time
import unicodedata

from fastapi import Response

from include.stocksync.availability.protocol import MAX_MESSAGE_CHARS, exact_headers
from include.stocksync.shop.freeze import CheckoutState
from include.stocksync.shop.postgres.live import PostgresLiveShop

HEADER_CHECKOUT = "X-Stocksync-Checkout"  # open | frozen | unknown | refused
HEADER_CAUSE = "X-Stocksync-Cause"
HEADER_HTML = "X-Stocksync-Freeze-Html"
HEADER_JSON = "X-Stocksync-Freeze-Json"
HEADER_RETRY_AFTER = "X-Stocksync-Retry-After"


def _plain(text: str, limit: int) -> str:
    """One line of text: whitespace runs (CR, LF, TAB included) one space, control, format and
    surrogate characters dropped, at most `limit` characters."""
    kept = "".join(char for char in " ".join(text.split()) if unicodedata.category(char)[0] != "C")
    return kept[:limit]


def html_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` as HTML element content that is also a safe header value: `& < > " '` escaped, every
    non-ASCII character a numeric character reference, no control characters."""
    return html.escape(_plain(text, limit), quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def json_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` as a JSON string literal (quotes included), ASCII only, that is also a safe header
    value; `<`, `>` and `&` escaped too, so the literal is inert wherever a script embeds it."""
    literal = json.dumps(_plain(text, limit), ensure_ascii=True)
    return literal.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class CheckoutGate:
    """The freeze state for the web server, cached for `cache_seconds` per worker."""

    def __init__(self, shop: PostgresLiveShop, *, cache_seconds: float) -> None:
        self.shop = shop
        self.cache_seconds = cache_seconds
        self.queries = 0  # database reads made (the cache's effect, in /metrics)
        self.answers: dict[str, int] = {}  # open | frozen | unknown | refused -> count (in /metrics)
        self._state: CheckoutState | None = None
        self._valid_until = 0.0
        self._refresh = asyncio.Lock()

    async def state(self) -> CheckoutState:
        """The cached state, or one fresh read shared by every request waiting meanwhile. Raises
        what the pool and the query raise (the caller bounds the wait and answers unknown)."""
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._refresh:
            cached = self._fresh()
            if cached is not None:
                return cached
            self.queries += 1
            state = await self.shop.checkout_state()
            now = time.monotonic()
            lifetime = self.cache_seconds
            if state.frozen:  # a freeze that expires sooner reopens checkout on time
                lifetime = min(lifetime, state.seconds_left)
            self._state, self._valid_until = state, now + lifetime
            return state

    def count(self, outcome: str) -> None:
        self.answers[outcome] = self.answers.get(outcome, 0) + 1

    def prometheus(self) -> str:
        lines = ["# TYPE stocksync_availability_checkout_gate_total counter"]
        lines += [f'stocksync_availability_checkout_gate_total{{answer="{outcome}"}} {n}'
                  for outcome, n in sorted(self.answers.items())]
        lines += ["# TYPE stocksync_availability_checkout_gate_queries_total counter",
                  f"stocksync_availability_checkout_gate_queries_total {self.queries}"]
        return "\n".join(lines) + "\n"

    def _fresh(self) -> CheckoutState | None:
        if self._state is not None and time.monotonic() < self._valid_until:
            return self._state
        return None


def answer(state: CheckoutState) -> Response:
    """204 open, or 403 frozen with the shopper message in the forms nginx puts on its page."""
    if not state.frozen:
        return _response(204, {HEADER_CHECKOUT: "open"}, "")
    assert state.shopper_message is not None
    return _response(403, {
        HEADER_CHECKOUT: "frozen",
        HEADER_HTML: html_text(state.shopper_message),
        HEADER_JSON: json_text(state.shopper_message),
        HEADER_RETRY_AFTER: str(max(1, math.ceil(state.seconds_left))),
    }, "frozen\n")


def unknown(cause: str) -> Response:
    return _response(503, {HEADER_CHECKOUT: "unknown", HEADER_CAUSE: cause}, f"unknown ({cause})\n")


def refused(cause: str) -> Response:
    return _response(401, {HEADER_CHECKOUT: "refused", HEADER_CAUSE: cause}, f"refused ({cause})\n")


def _response(status: int, headers: dict[str, str], body: str) -> Response:
    response = Response(content=body.encode("ascii") if status != 204 else b"", status_code=status,
                        media_type="text/plain" if status != 204 else None)
    response.raw_headers[:0] = exact_headers({**headers, "Cache-Control": "no-store"})
    return response
