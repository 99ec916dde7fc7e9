"""A tiny webhook receiver for alerts (demo and tests): stores every POSTed JSON body.

`python -m devstack.webhook_receiver --port 8766 --file .local/alerts.jsonl`

- `POST /<anything>`: the body is appended (one JSON line) and answered 200.
- `GET /received`: every body received so far, as a JSON list.
- `GET /health`: `{"status": "ok"}`.

Alerts quote run details and links into the shop's operations, so the file is the owner's only
(0600, also when an older version left it readable).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(host: str, port: int, store: Path | None) -> ThreadingHTTPServer:
    received: list[dict] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, {"status": "ok"})
            elif self.path == "/received":
                with lock:
                    self._answer(200, list(received))
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = {"raw": raw.decode(errors="replace")}
            entry = {"path": self.path, "body": body}
            with lock:
                received.append(entry)
                if store is not None:
                    with os.fdopen(_open_store(store), "a") as fh:
                        fh.write(json.dumps(entry) + "\n")
            self._answer(200, {"received": True})

    return ThreadingHTTPServer((host, port), Handler)


def _open_store(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--file", type=Path, default=None)
    args = parser.parse_args()
    os.umask(0o077)
    if args.file:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        os.close(_open_store(args.file))
    make_server(args.host, args.port, args.file).serve_forever()


if __name__ == "__main__":
    main()
