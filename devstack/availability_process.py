"""Start and stop the availability service (include/stocksync/availability) as a subprocess.

For tests, the benchmark and the local stack: the real service, started the way it runs in
production (`python -m include.stocksync.availability`, uvicorn, its own process), on 127.0.0.1.
Configuration goes in by environment only (`STOCKSYNC_AVAILABILITY_*`; the secret and the DSN are
never on a command line, where other local users could read them), and no such variable of the
calling process leaks into the child. Output goes to a log file (0600: the process runs with
umask 077) so a test can read what the service logged.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from devstack.local_secrets import PRIVATE_UMASK
from include.stocksync.availability.settings import ENV_PREFIX
from include.stocksync.config.settings import PROJECT_ROOT


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_secret() -> str:
    """A random shared secret (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)


class AvailabilityProcess:
    """The service on `http://127.0.0.1:<port>`; `settings` are variable names without the prefix
    (`{"SHOP_DSN": ..., "SECRET": ...}`). `start()` waits until it answers `/health`."""

    def __init__(self, settings: dict[str, str], *, port: int | None = None, workers: int = 1,
                 log_path: Path | None = None) -> None:
        self.settings = dict(settings)
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or Path(tempfile.mkdtemp(prefix="stocksync-availability-")) / "service.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def secret(self) -> str | None:
        return self.settings.get("SECRET")

    @property
    def path(self) -> str:
        return self.settings.get("PATH", "/inventory")

    @property
    def endpoint(self) -> str:
        return f"{self.url}{self.path}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env["PYTHONPATH"] = str(PROJECT_ROOT)
        env.update({f"{ENV_PREFIX}{key.upper()}": value for key, value in self.settings.items()})
        return env

    def start(self, timeout: float = 30.0) -> AvailabilityProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "include.stocksync.availability", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(self.workers)],
                cwd=PROJECT_ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                umask=PRIVATE_UMASK, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"availability service exited with code {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"availability service did not answer within {timeout:.0f}s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully: workers flush their counters), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        except ProcessLookupError:
            pass

    def __enter__(self) -> AvailabilityProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
