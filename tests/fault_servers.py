"""Misbehaving and real peers for the fault tests, all on 127.0.0.1:

- `HangingServer`: accepts TCP connections and never answers (a webhook that hangs);
- `SmtpSink`: a real SMTP server (aiosmtpd) that keeps every message it receives;
- `tiny_full_tmpfs`: a mounted 64 KiB tmpfs filled to the last byte (a full disk);
- `ScriptedHttpServer`: answers any request with the next scripted status, headers and body (a
  WMS that rate-limits, breaks, lies about JSON or sends a body without end);
- `AnsweringWms`: answers each POST from the request it got (receipts that lie, one order refused).

Nothing of stocksync's is replaced: these are the other ends of its connections.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class HangingServer:
    """Listens, accepts every connection and never reads or writes: the client's read timeout is
    the only way out. Connections are closed when the server stops."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)  # held open, never answered

    def connection_env(self) -> str:
        import json

        return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": self.port, "schema": "http"})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


class SmtpSink:
    """aiosmtpd's Controller with a handler that keeps each message (parsed)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd
                sink.messages.append(message_from_bytes(envelope.original_content or envelope.content))
                return "250 Message accepted for delivery"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def smtp_connection_env(port: int, to: str = "ops@shop.test") -> str:
    """`AIRFLOW_CONN_<ID>` for a plain (no TLS) SMTP server on 127.0.0.1:`port`."""
    import json

    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": {
        "disable_ssl": True, "disable_tls": True, "from_email": "stocksync@shop.test", "to": to}})


def free_port() -> int:
    """A port nobody listens on (bound and released: connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def tiny_full_tmpfs() -> Iterator[Path]:
    """A 64 KiB tmpfs, filled until the kernel says ENOSPC. Needs root (mount); the caller skips
    when it cannot be mounted."""
    mountpoint = Path(tempfile.mkdtemp(prefix="stocksync-full-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mountpoint)], check=True,
                   capture_output=True)
    try:
        with contextlib.suppress(OSError), (mountpoint / "filler").open("wb", buffering=0) as filler:
            while True:  # until ENOSPC
                filler.write(b"\0" * 4096)
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True)
        mountpoint.rmdir()


@dataclass
class Scripted:
    """One answer of a `ScriptedHttpServer`: status, headers, body; `stream_bytes` more bytes of
    filler sent after the body with no Content-Length (the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0


class ScriptedHttpServer:
    """A misbehaving HTTP peer on 127.0.0.1: answers every request (any method, any path) with the
    next answer of `script`, the last one for ever after. `requests` lists (method, path) as they
    came; `streamed` counts the filler bytes it managed to send before the client hung up."""

    def __init__(self, script: list[Scripted]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, str]] = []
        self.streamed = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                peer.requests.append((self.command, self.path))
                answer = peer.script.pop(0) if len(peer.script) > 1 else peer.script[0]
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    if not answer.stream_bytes:
                        self.send_header("Content-Length", str(len(answer.body)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(answer.body)
                    filler = b" " * 65536
                    while peer.streamed < answer.stream_bytes:
                        self.wfile.write(filler)
                        peer.streamed += len(filler)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AnsweringWms:
    """A WMS on 127.0.0.1 whose answer to each POST is built from the request:
    `answer(path, idempotency_key, json_body)` -> (status, JSON-able body or raw bytes). `seen`
    lists (path, key, body) as they came. A WMS that lies in its receipts (another order's, other
    lines, one receipt id for two orders) or refuses one order in its own way."""

    def __init__(self, answer: Callable[[str, str, Any], tuple[int, Any]]) -> None:
        self.seen: list[tuple[str, str, Any]] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw) if raw else None
                key = self.headers.get("Idempotency-Key", "")
                peer.seen.append((self.path, key, body))
                status, out = answer(self.path, key, body)
                data = out if isinstance(out, bytes) else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class DrippingServer:
    """Answers every request 200 with `body` (its whole length declared), sent one byte every
    `interval` seconds: each read of the client's socket gets a byte well inside its timeout, so
    only a bound on the whole answer ends the wait. `sent` lists, per request, how many bytes went
    out before the client hung up."""

    def __init__(self, body: bytes, interval: float = 0.2) -> None:
        self.sent: list[int] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _drip(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                peer.sent.append(0)
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        peer.sent[-1] += 1
                        time.sleep(interval)
                except OSError:  # the client gave up
                    pass

            do_GET = do_POST = _drip  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
