"""The availability service's HTTP layer against clients that never finish a request, send an
endless head, or ask a near-miss URL: the real service (uvicorn + httptools with the head bounds of
include/stocksync/availability/http_head.py), started as in production, at its shipped settings
(MAX_CONCURRENCY 1000, the 5 s head bound). No database is needed: these answers come before any
lookup (the database port is closed; an item would answer `db_down`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from devstack.availability_process import AvailabilityProcess, free_port, new_secret
from include.stocksync.availability.http_head import HEAD_BYTES, HEAD_SECONDS

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def service() -> Iterator[AvailabilityProcess]:
    with AvailabilityProcess({"SHOP_DSN": f"postgresql://postgres:x@127.0.0.1:{free_port()}/shop",
                              "SECRET": new_secret(), "DB_BUDGET_MS": "200"}) as svc:
        yield svc


def answer_of(sock: socket.socket, timeout: float) -> bytes:
    """What the server sent before closing `sock` (b"" if it closed without a word)."""
    sock.settimeout(timeout)
    got = b""
    while chunk := sock.recv(65536):
        got += chunk
    return got


@pytest.mark.slow  # waits out the 5 s head bound
def test_connections_that_never_finish_a_request_are_closed_and_lock_nobody_out(service: AvailabilityProcess) -> None:
    """1,000 connections (the shipped MAX_CONCURRENCY: uvicorn answers 503 beyond it), half of them
    silent, half with a request head begun and never finished: each is answered 408 with the
    service's refusal headers and closed once the head bound has passed, and the service answers
    everyone again."""
    socks = []
    try:
        for n in range(1000):
            sock = socket.create_connection(("127.0.0.1", service.port))
            if n % 2:
                sock.sendall(b"POST /inventory HTTP/1.1\r\nHost: x\r\n")  # never finished
            socks.append(sock)
        opened = time.monotonic()
        answers = [answer_of(sock, HEAD_SECONDS + 10) for sock in socks[:10]]
        closed_after = time.monotonic() - opened
        for sock in socks[10:]:
            answer_of(sock, HEAD_SECONDS + 10)
    finally:
        for sock in socks:
            sock.close()
    for got in answers:
        assert got.startswith(b"HTTP/1.1 408 "), got[:200]
        assert b"\r\nAvailable: -1\r\n" in got and b"\r\nX-Inventory-Cause: head_timeout\r\n" in got, got[:400]
    assert closed_after >= HEAD_SECONDS - 0.5  # not before the bound: a slow but honest client has it all
    assert requests.get(f"{service.url}/health", timeout=5).status_code == 200
    item = requests.post(service.endpoint, data=b".code=SKU-1", timeout=10,
                         headers={"Content-Type": FORM, "X-Inventory-Secret": str(service.secret)})
    assert (item.status_code, item.headers["X-Inventory-Status"]) == (200, "unknown")


@pytest.mark.parametrize("where", ["header", "target"])
def test_an_endless_header_line_or_request_target_is_refused_at_the_head_bound(service: AvailabilityProcess,
                                                                               where: str) -> None:
    """One connection sends a header value (or a request target) that never ends: answered 431
    and closed once HEAD_BYTES have arrived, not buffered on (it was 48 MiB and more)."""
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.sendall(b"POST /inventory HTTP/1.1\r\nHost: x\r\nX-Big: " if where == "header" else b"POST /inventory?x=")
    sent, chunk = 0, b"a" * 16384
    try:
        while sent < 48 * 2**20:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:  # closed by the server
        pass
    try:
        got = answer_of(sock, 10)
    except OSError:  # reset: the refusal was sent while we were still writing
        got = b""
    finally:
        sock.close()
    assert sent < HEAD_BYTES + 4 * 2**20, f"{sent >> 20} MiB of one unfinished {where} taken"
    assert got == b"" or got.startswith(b"HTTP/1.1 431 "), got[:200]
    assert requests.get(f"{service.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/inventory/", 404), ("POST", "/metrics/", 404), ("GET", "/inventory", 405), ("PUT", "/inventory", 405),
])
def test_a_near_miss_url_or_method_gets_the_refusal_never_a_redirect(service: AvailabilityProcess, method: str,
                                                                     path: str, status: int) -> None:
    """The script URL pasted with a trailing slash, or asked with another method, through a TLS proxy
    (Host and X-Forwarded-Proto as nginx sets them): the service's refusal, whose headers say
    unknown, never a redirect (it sent the caller, secret and all, to a plain-HTTP URL)."""
    response = requests.request(method, f"{service.url}{path}?secret={service.secret}", data=b".code=SKU-1",
                                headers={"Content-Type": FORM, "Host": "shop.example.com",
                                         "X-Forwarded-Proto": "https"}, allow_redirects=False, timeout=5)
    assert response.status_code == status and "location" not in response.headers
    assert (response.headers["Available"], response.headers["X-Inventory-Status"]) == ("-1", "rejected")
    assert response.headers["X-Inventory-Cause"] == {404: "not_found", 405: "method_not_allowed"}[status]
    if status == 405:
        assert "POST" in response.headers["Allow"]


def test_the_largest_item_makes_one_short_log_line(service: AvailabilityProcess) -> None:
    """The largest item the protocol takes (8 KiB: 31 options of characters each percent-encoded in
    the options key, 23,000 characters) is logged with its code and options cut to 200 characters,
    saying how much more there was: every answer is logged, and it was 23 KiB of log each."""
    options = "&".join(f"o{i:02d}{'!' * 122}={'!' * 124}" for i in range(31))
    before = service.log_path.stat().st_size
    for n in range(5):
        response = requests.post(service.endpoint, data=f".code=X{n:07d}&{options}".encode(), timeout=10,
                                 headers={"Content-Type": FORM, "X-Inventory-Secret": str(service.secret)})
        assert response.status_code == 200, response.headers
    written = service.log_path.read_bytes()[before:].decode()
    lines = [line for line in written.splitlines() if " answer client=" in line]
    assert len(lines) == 5 and all(len(line) < 1024 for line in lines), [len(line) for line in lines]
    assert all("chars)" in line for line in lines)
