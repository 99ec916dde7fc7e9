"""Per-client token buckets: a client may burst `burst` requests, then `rate` per second.

Why a token bucket and not a window counter: the storefront's calls are bursty (a shopper adding
several items, an order confirmation of many lines), and a bucket lets a burst through while
bounding the sustained rate. Per worker process (uvicorn workers share nothing), so with N workers
a client gets at most N times the rate in aggregate; the point is to keep one caller from taking
the database, which that still does. The table of clients is bounded (least recently seen
clients are dropped first: a dropped client starts again with a full bucket).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, client: str) -> tuple[bool, float]:
        """Take a token for `client`: (allowed, seconds until the next token when refused)."""
        if not self.enabled:
            return True, 0.0
        now = self.clock()
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return allowed, 0.0 if allowed else (1.0 - tokens) / self.rate
