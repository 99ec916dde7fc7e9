"""The demo's services on fixed ports, side by side with another checkout's: a port that already
answers with a service this checkout did not start (another checkout's WMS simulator: its token
differs, so every call would get 401) is refused at start with the setting that moves it, and
the ports come from the environment."""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.local_pg import LocalPostgres
from devstack.local_stack import (
    WEBHOOK_PORT_SETTING,
    WMS_PORT_SETTING,
    BackgroundService,
    LocalStack,
    free_port,
)


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_service() -> Iterator[int]:
    """Something else answering /health on a port: another checkout's simulator, say."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def webhook_on(port: int, state_dir: Path) -> BackgroundService:
    return BackgroundService("webhook", port, [sys.executable, "-m", "devstack.webhook_receiver", "--port", str(port),
                                               "--file", str(state_dir / "alerts.jsonl")],
                             state_dir=state_dir, port_setting=WEBHOOK_PORT_SETTING)


def test_a_port_answered_by_a_service_we_did_not_start_is_refused(other_service: int, tmp_path: Path) -> None:
    service = webhook_on(other_service, tmp_path)
    with pytest.raises(RuntimeError, match=rf"port {other_service} .*already answers.*{WEBHOOK_PORT_SETTING}"):
        service.start()
    assert service.pid() is None  # nothing started, nothing to stop later


def test_our_own_running_service_is_reused(tmp_path: Path) -> None:
    service = webhook_on(free_port(), tmp_path).start()
    try:
        first = service.pid()
        assert first is not None and service.running()
        assert service.start().pid() == first  # a second demo run reuses it
    finally:
        service.stop()


def test_the_stack_takes_its_ports_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    wms_port, webhook_port = free_port(), free_port()
    monkeypatch.setenv(WMS_PORT_SETTING, str(wms_port))
    monkeypatch.setenv(WEBHOOK_PORT_SETTING, str(webhook_port))
    stack = LocalStack(pg=LocalPostgres(name="ports", port=free_port(), local_dir=tmp_path), local_dir=tmp_path)
    assert (stack.wms.port, stack.webhook.port) == (wms_port, webhook_port)
    assert stack.wms.url == f"http://127.0.0.1:{wms_port}" and f"--port {wms_port}" in " ".join(stack.wms.argv)
    monkeypatch.delenv(WMS_PORT_SETTING)
    monkeypatch.delenv(WEBHOOK_PORT_SETTING)
    assert (LocalStack(local_dir=tmp_path).wms_port, LocalStack(local_dir=tmp_path).webhook_port) == (18765, 18766)


def test_ours_on_another_port_does_not_make_a_taken_port_ours(other_service: int, tmp_path: Path) -> None:
    """Our service runs on the port set before; the port named now answers with someone else's."""
    ours = webhook_on(free_port(), tmp_path).start()
    try:
        with pytest.raises(RuntimeError, match="already answers"):
            webhook_on(other_service, tmp_path).start()
        assert ours.running()  # refused before touching anything
    finally:
        ours.stop()


def test_moving_the_port_stops_ours_on_the_old_one(tmp_path: Path) -> None:
    old = webhook_on(free_port(), tmp_path).start()
    old_pid = old.pid()
    new = webhook_on(free_port(), tmp_path).start()
    try:
        assert new.running() and new.pid() != old_pid
        deadline = time.monotonic() + 10
        while old.healthy() and time.monotonic() < deadline:  # SIGTERM sent; it exits at once
            time.sleep(0.1)
        assert not old.healthy()  # not left running with nobody's pid file
    finally:
        new.stop()
