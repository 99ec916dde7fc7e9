"""A scripted WMS for the trust-boundary tests: an HTTP server on 127.0.0.1 that answers each
cursor of `GET /v1/stock` with the page a test wrote for it, the same page on every retry (as a
real WMS would: a broken page stays broken). The WMS simulator in devstack/ plays a well-behaved
warehouse with injectable faults; this double plays a misbehaving one, byte for byte.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# pages of one scripted snapshot share one time stamp (a test session is far shorter than the
# maximum snapshot age)
SESSION_TAKEN_AT = iso(datetime.now(timezone.utc))


def page_body(items: list[Any], *, snapshot_id: str = "snap-1", taken_at: str | None = None,
              counted_until: str | None = "same", next_cursor: str | None = None, **extra: Any) -> bytes:
    taken = taken_at if taken_at is not None else SESSION_TAKEN_AT
    body = {"snapshot_id": snapshot_id, "snapshot_taken_at": taken,
            "orders_counted_until": taken if counted_until == "same" else counted_until,
            "items": items, "next_cursor": next_cursor, **extra}
    return json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \\udxxx escapes


class ScriptedWms:
    """`answers[cursor]` (None = first page) is the answer to that cursor; `dynamic` may build
    answers on the fly (endless walks)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.answers: dict[str | None, Answer | Callable[[], Answer]] = {}
        self.dynamic: Callable[[str | None], Answer | None] | None = None
        self.requests: list[tuple[float, str | None]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                if url.path == "/health":
                    self._send(Answer(200, b"{}"))
                    return
                if self.headers.get("Authorization") != f"Bearer {double.token}":
                    self._send(Answer(401, b'{"error": "unauthorized"}'))
                    return
                cursor = parse_qs(url.query).get("cursor", [None])[0]
                double.requests.append((time.monotonic(), cursor))
                answer = double.dynamic(cursor) if double.dynamic else None
                if answer is None:
                    found = double.answers.get(cursor)
                    answer = found() if callable(found) else found
                if answer is None:
                    answer = Answer(410, b'{"error": "cursor expired"}')
                if answer.delay:
                    time.sleep(answer.delay)
                self._send(answer)

            def _send(self, answer: Answer) -> None:
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer.body)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        self.answers = {}
        self.dynamic = None
        self.requests = []

    def serve_walk(self, items: list[Any], page_size: int, **header: Any) -> list[str | None]:
        """A well-formed walk of `items` in pages of `page_size`; returns the cursors, first None.
        `header` overrides go to every page (e.g. taken_at=...)."""
        chunks = [items[i:i + page_size] for i in range(0, len(items), page_size)] or [[]]
        cursors: list[str | None] = [None, *(f"c{n}" for n in range(1, len(chunks)))]
        for n, chunk in enumerate(chunks):
            following = cursors[n + 1] if n + 1 < len(chunks) else None
            self.answers[cursors[n]] = Answer(body=page_body(chunk, next_cursor=following, **header))
        return cursors

    def connection_env(self) -> str:
        """The `AIRFLOW_CONN_WMS_API` value that points the DAGs at this double."""
        return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": self.port, "schema": "http",
                           "password": self.token})

    def stop(self) -> None:
        self.server.shutdown()


def hours_ago(hours: float) -> str:
    return iso(datetime.now(timezone.utc) - timedelta(hours=hours))
