"""The availability service's HTTP/1.1 connections (uvicorn's httptools protocol) with two bounds
on a request's head (request line and headers), which uvicorn leaves open, the app only seeing a
request once its head is complete:

- time: a connection must send a complete head within `HEAD_SECONDS` of opening, or of its last
  answer on a kept-alive connection. A connection that sends nothing or a head never finished was
  kept open for as long as the client liked: `MAX_CONCURRENCY` of them (1,000 by default) shut
  every caller out (uvicorn answers 503 beyond it), before any authentication.
- size: a head larger than `HEAD_BYTES` is answered 431 and closed. httptools buffers an unfinished
  header line or request target without limit (48 MiB of one header line were accepted, 43 MB of
  the worker's memory each).

Both answers carry the headers every refusal of the service carries (`Available: -1`, status
`rejected`, a cause), then the connection is closed. The platform's requests are a few hundred
bytes sent at once, and a proxy in front (nginx: `client_header_timeout`,
`large_client_header_buffers`) keeps its own bounds: these hold for whatever reaches the service.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from include.stocksync.availability import protocol as p

HEAD_SECONDS = 5.0
HEAD_BYTES = 64 * 1024


def refusal(status: int, reason: str, cause: str, detail: str) -> bytes:
    """A whole HTTP/1.1 refusal with the service's refusal headers, closing the connection."""
    headers = {**p.platform_headers(p.UNKNOWN, "We cannot confirm availability right now."),
               p.HEADER_X_AVAILABLE: str(p.UNKNOWN), p.HEADER_STATUS: "rejected", p.HEADER_CAUSE: cause,
               "Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(detail) + 1),
               "X-Content-Type-Options": "nosniff", "Connection": "close"}
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("ascii") + detail.encode("ascii") + b"\n"


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the time and size bounds on each request's head. A head is
    awaited from the connection's opening, and from the first byte of each later request on it
    (between requests uvicorn's own keep-alive timeout closes a connection that sends nothing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    def _await_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _head_done(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: int, reason: str, cause: str, detail: str) -> None:
        self._head_done()
        if not self.transport.is_closing():
            self.transport.write(refusal(status, reason, cause, detail))
            self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, "Request Timeout", "head_timeout", f"no complete request head within {HEAD_SECONDS:g} s")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_BYTES:
                self._refuse(431, "Request Header Fields Too Large", "head_too_large",
                             f"a request head (request line and headers) of more than {HEAD_BYTES} bytes")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # a later request on a kept-alive connection (the first was awaited on opening)
            self._await_head()

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()
