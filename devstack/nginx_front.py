"""Debian's real nginx in front of a stand-in storefront, with stocksync's checkout gate included
exactly as a merchant includes it (deploy/nginx/stocksync/, docs/platforms-freeze.md). For the
tests (tests/integration/test_nginx_freeze.py) and scripts/benchmark_checkout_gate.py.

- `Storefront`: a tiny real HTTP server on 127.0.0.1 that answers every request `200 storefront
  <METHOD> <path>` and keeps what it received (so a test can tell a refused checkout never
  reached the shop);
- `NginxFront`: nginx run by the test user with its own prefix and configuration (no system
  service, no root needed), listening on 127.0.0.1. The shipped files are copied unchanged; the
  settings file is the shipped example with only the merchant's values replaced (service address,
  secret, fail mode, platform), each replacement checked to hit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from devstack.availability_process import free_port
from include.stocksync.config.settings import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "deploy" / "nginx" / "stocksync"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Storefront:
    """The shop behind nginx: every request answered 200, every request remembered."""

    def __init__(self, *, remember: bool = True) -> None:
        received: list[tuple[str, str]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 65536))
                if remember:
                    received.append((self.command, self.path))
                body = f"storefront {self.command} {self.path}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def settings_text(*, service_port: int, secret: str, fail_mode: str, platform: str) -> str:
    """The shipped example settings with the merchant's values in place."""
    text = (SHIPPED / "freeze-settings.example.conf").read_text()
    replacements = {
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{service_port};",
        '"CHANGE-ME-to-STOCKSYNC_AVAILABILITY_SECRET"': f'"{secret}"',
        "default open;": f"default {fail_mode};",
        "checkout-urls/magento2.conf;": f"checkout-urls/{platform}.conf;",
    }
    for old, new in replacements.items():
        assert old in text, f"the shipped example settings no longer contain {old!r}"
        text = text.replace(old, new)
    return text


class NginxFront:
    """nginx on `http://127.0.0.1:<port>` in front of `storefront`, the gate asking the
    availability service on `service_port`."""

    def __init__(self, root: Path, *, storefront_port: int, service_port: int, secret: str,
                 fail_mode: str = "open", platform: str = "magento2") -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = root / "conf"
        shutil.rmtree(root, ignore_errors=True)
        (root / "logs").mkdir(parents=True)
        (root / "tmp").mkdir()
        shutil.copytree(SHIPPED, conf / "stocksync")
        (conf / "stocksync" / "freeze-settings.conf").write_text(settings_text(
            service_port=service_port, secret=secret, fail_mode=fail_mode, platform=platform))
        (conf / "nginx.conf").write_text(f"""
pid logs/nginx.pid;
error_log logs/error.log warn;
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    include stocksync/freeze-settings.conf;
    server {{
        listen 127.0.0.1:{self.port};
        server_name shop.test;
        include stocksync/freeze-server.conf;
        # the shop's own refusal (as Magento's sample config denies /app/etc)
        location /app/etc/ {{
            deny all;
        }}
        location / {{
            proxy_pass http://127.0.0.1:{storefront_port};
        }}
    }}
}}
""")
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.root), "-c", "conf/nginx.conf", *extra]

    def start(self, timeout: float = 15.0) -> NginxFront:
        checked = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration:\n{checked.stderr}")
        self.process = subprocess.Popen(self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(f"{self.url}/app/etc/ready", timeout=1)
                return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"nginx exited: {stderr}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not answer within {timeout:.0f}s:\n{self.error_log()}")
            time.sleep(0.05)

    def error_log(self) -> str:
        path = self.root / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL of nginx's own process group."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def __enter__(self) -> NginxFront:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
