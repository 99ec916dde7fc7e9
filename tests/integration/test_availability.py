"""The availability service (inventory script) against real services on 127.0.0.1.

Every test talks HTTP to the service running as its own process (uvicorn, started by
devstack/availability_process.py), which reads the test PostgreSQL cluster's shop and, in live
mode, the WMS simulator. The shop's catalog is seeded from the WMS (`shop_in_line_with_wms`).
Services with other settings (no database, a database that never answers, IP ranges, a small
rate limit, live mode) are separate processes, each started once per module.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devstack.availability_process import AvailabilityProcess, free_port, new_secret
from include.stocksync.availability.skus import upsert_mapping
from include.stocksync.config.settings import PROJECT_ROOT
from include.stocksync.store.db import connect, query
from tests.conftest import TEST_TOKEN, SplitDatabases, shop_in_line_with_wms
from tests.fault_servers import HangingServer

FORM = "application/x-www-form-urlencoded"
SECRET_HEADER = "X-Inventory-Secret"  # docs/availability.md: the shared secret as a request header
SKUS = 40


# --------------------------------------------------------------------------- helpers
def sku(i: int) -> str:
    return f"SKU-{i:07d}"


def ask(svc: AvailabilityProcess, fields: Any = None, *, body: bytes | None = None, secret: str | None = "default",
        headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
        session: requests.Session | None = None, timeout: float = 10) -> requests.Response:
    """POST the inventory script the way the platform does (form body, secret in the header)."""
    sent = {"Content-Type": FORM}
    if secret == "default":
        secret = svc.secret
    if secret is not None:
        sent[SECRET_HEADER] = secret
    sent.update(headers or {})
    data = body if body is not None else urlencode(fields or []).encode()
    return (session or requests).post(svc.endpoint, data=data, headers=sent, params=params, timeout=timeout)


def available(response: requests.Response) -> int:
    return int(response.headers["Available"])


def cause(response: requests.Response) -> str:
    return response.headers["X-Inventory-Cause"]


def shop_qty(dsn: str, name: str) -> tuple[int, int]:
    with connect(dsn) as conn:
        row = conn.execute("SELECT qty, wms_seq FROM shop.stock WHERE sku = %s", (name,)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def set_shop(dsn: str, name: str, qty: int, seq: int | None = None) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE shop.stock SET qty = %s, wms_seq = coalesce(%s, wms_seq) WHERE sku = %s", (qty, seq, name))
        conn.commit()


def place(conn: psycopg.Connection, lines: list[tuple[str, int]]) -> int | None:
    """Checkout through shop.place_order on an autocommit connection; None when refused."""
    try:
        row = conn.execute("SELECT shop.place_order(%s, %s)", ([s for s, _ in lines], [q for _, q in lines])).fetchone()
        return int(row[0]) if row else None
    except psycopg.Error as exc:
        if exc.sqlstate and exc.sqlstate.startswith("SF"):
            return None
        raise


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def service(split_databases: SplitDatabases) -> Iterator[AvailabilityProcess]:
    svc = AvailabilityProcess({"SHOP_DSN": split_databases.shop, "STOCKSYNC_DSN": split_databases.stocksync,
                               "SECRET": new_secret(), "RATE_LIMIT_PER_SECOND": "0",
                               "STATS_FLUSH_SECONDS": "0.3", "DB_BUDGET_MS": "300"})
    with svc:
        yield svc


@pytest.fixture(scope="module")
def live_service(split_databases: SplitDatabases, wms_process: Any) -> Iterator[AvailabilityProcess]:
    svc = AvailabilityProcess({"SHOP_DSN": split_databases.shop, "STOCKSYNC_DSN": split_databases.stocksync,
                               "SECRET": new_secret(), "RATE_LIMIT_PER_SECOND": "0",
                               "LIVE_MODE": "true", "WMS_URL": wms_process.url, "WMS_TOKEN": TEST_TOKEN,
                               "WMS_BUDGET_MS": "150", "DB_BUDGET_MS": "300"})
    with svc:
        yield svc


@pytest.fixture(scope="module")
def no_database() -> Iterator[AvailabilityProcess]:
    """The database is down: nothing listens on its port."""
    svc = AvailabilityProcess({"SHOP_DSN": f"postgresql://postgres:x@127.0.0.1:{free_port()}/shop",
                               "SECRET": new_secret(), "DB_BUDGET_MS": "200", "DB_RETRY_MS": "500"})
    with svc:
        yield svc


@pytest.fixture
def shop(clean_split: SplitDatabases, wms: Any) -> str:
    """A shop (in its own database, apart from stocksync's) whose catalog is the WMS's 40 SKUs (stock
    as the WMS has it, seq 0); no mappings, no stats in stocksync's database; then SKU 1 has 7 units,
    SKU 2 none, SKU 3 is disabled, SKU 4 has no stock row."""
    dsn = shop_in_line_with_wms(clean_split.shop, wms, skus=SKUS, seed=5, drift_share=0.0)
    with connect(dsn) as conn:
        conn.execute("UPDATE shop.stock SET qty = 7 WHERE sku = %s", (sku(1),))
        conn.execute("UPDATE shop.stock SET qty = 0 WHERE sku = %s", (sku(2),))
        conn.execute("UPDATE shop.products SET enabled = false WHERE sku = %s", (sku(3),))
        conn.execute("DELETE FROM shop.stock WHERE sku = %s", (sku(4),))
        conn.commit()
    return dsn


@pytest.fixture
def store(shop: str, clean_split: SplitDatabases) -> str:
    """stocksync's own database of the `shop` scenario (sku_map, counters, live records)."""
    return clean_split.stocksync


# --------------------------------------------------------------------------- the protocol
# The platform's requests, byte for byte as its documentation gives them (DESIGN: the store POSTs a
# form with .catalog, .code, .id, .quantity, .price, then the options as Name=Value; it validates a
# saved URL with .catalog=<catalog>&.id=_fake_yahoo_item_&.code=_fake_yahoo_code_). The platform
# can only be given a URL, so the secret travels in the query string. Answers are read from the
# raw bytes: the platform reads the headers `Available: <integer>` and `Inventory-Message: <text>`.
CATALOG = "yhst-12345678"
VALIDATION_BODY = f".catalog={CATALOG}&.id=_fake_yahoo_item_&.code=_fake_yahoo_code_".encode()


def platform_request(svc: AvailabilityProcess, body: bytes, *, secret: str | None = "default",
                     version: str = "1.1") -> bytes:
    """The bytes of one platform call: POST, form-encoded, Content-Length, the secret in the URL."""
    secret = svc.secret if secret == "default" else secret
    target = svc.path + (f"?secret={secret}" if secret is not None else "")
    return (f"POST {target} HTTP/{version}\r\nHost: 127.0.0.1:{svc.port}\r\nConnection: close\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def exchange(svc: AvailabilityProcess, raw: bytes, source: str = "127.0.0.1") -> tuple[int, list[str]]:
    """Send raw bytes over a socket; the status code and the header lines exactly as received."""
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(raw)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *lines = head.split("\r\n")
    return int(status_line.split(" ")[1]), lines


def header_line(lines: list[str], name: str) -> str:
    """The one line of header `name` (spelled exactly, as the platform's documentation does)."""
    found = [line for line in lines if line.startswith(f"{name}: ")]
    assert len(found) == 1, (name, lines)
    return found[0]


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_platform_item_request_is_answered_in_the_platform_headers(service: AvailabilityProcess, shop: str,
                                                                   store: str, version: str) -> None:
    with connect(store) as conn:
        upsert_mapping(conn, "TEE", {"Color": "Sea Green", "Size": "L"}, sku(11))
        conn.commit()
    set_shop(shop, sku(11), 5)
    body = f".catalog={CATALOG}&.code={sku(1)}&.id=item-1&.quantity=2&.price=19.90".encode()
    status, lines = exchange(service, platform_request(service, body, version=version))
    assert status == 200
    assert header_line(lines, "Available") == "Available: 7"
    assert header_line(lines, "Inventory-Message") == "Inventory-Message: In stock."
    # the options follow as plain Name=Value pairs, a space as '+' or as '%20'
    for options in (b"Color=Sea+Green&Size=L", b"Color=Sea%20Green&Size=L"):
        body = f".catalog={CATALOG}&.code=TEE&.id=tee&.quantity=1&.price=12.50&".encode() + options
        status, lines = exchange(service, platform_request(service, body, version=version))
        assert (status, header_line(lines, "Available")) == (200, "Available: 5")
    # not available: 0 and the message the shopper reads
    body = f".catalog={CATALOG}&.code={sku(2)}&.id=item-2&.quantity=1&.price=5.00".encode()
    status, lines = exchange(service, platform_request(service, body, version=version))
    assert header_line(lines, "Available") == "Available: 0"
    assert header_line(lines, "Inventory-Message") == "Inventory-Message: Sorry, this item is out of stock."
    # unknown: a negative number
    body = f".catalog={CATALOG}&.code=NO-SUCH-ITEM&.id=x&.quantity=1&.price=1.00".encode()
    status, lines = exchange(service, platform_request(service, body, version=version))
    assert (status, header_line(lines, "Available")) == (200, "Available: -1")


def test_platform_validation_request_is_answered_without_the_database(service: AvailabilityProcess,
                                                                      no_database: AvailabilityProcess) -> None:
    for svc in (service, no_database):  # the second one has no database at all
        status, lines = exchange(svc, platform_request(svc, VALIDATION_BODY))
        assert status == 200
        assert re.fullmatch(r"Available: -?[0-9]+", header_line(lines, "Available"))
        assert header_line(lines, "X-Inventory-Cause") == "X-Inventory-Cause: probe"  # not a database cause
    # a wrong secret is refused, in the same headers: the merchant learns the URL is wrong
    status, lines = exchange(service, platform_request(service, VALIDATION_BODY, secret="not-the-secret-at-all"))
    assert (status, header_line(lines, "Available")) == (403, "Available: -1")


@pytest.mark.parametrize(("body", "status", "why"), [
    (b"", 400, "missing_code"),  # not the validation request: nothing says which item
    (b".catalog=yhst-12345678&.id=item-1&.quantity=1&.price=1.00", 400, "missing_code"),
    (b".catalog=yhst-12345678&.code=SKU-0000001&.id=item-1&.quantity=two&.price=1.00", 400, "bad_quantity"),
    (b".catalog=yhst-12345678&.code=SKU-0000001&.id=item-1&.quantity=-3&.price=1.00", 400, "bad_quantity"),
    (b".catalog=yhst-12345678&.code=SKU-0000001&.code=SKU-0000002", 400, "repeated_field"),
    (b".catalog=yhst-12345678&.code=SKU-0000001&.id=" + b"x" * 9000, 413, "body_too_large"),
])
def test_bad_platform_requests_get_a_clear_unknown(service: AvailabilityProcess, shop: str, body: bytes,
                                                   status: int, why: str) -> None:
    got, lines = exchange(service, platform_request(service, body))
    assert got == status
    assert header_line(lines, "Available") == "Available: -1"
    assert header_line(lines, "X-Inventory-Cause") == f"X-Inventory-Cause: {why}"


def test_shopper_message_header_is_one_safe_line(service: AvailabilityProcess, shop: str) -> None:
    """Text from the database (a freeze's shopper message) with CR/LF and non-ASCII characters: one
    header line of printable ASCII, nothing injected, cut at 300 characters."""
    hostile = "Checkout pauses until 03:00 — sorry!\r\nSet-Cookie: session=evil\r\n\r\n<b>Grüße</b>"
    with connect(shop) as conn:
        conn.execute("INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, expires_at) "
                     "VALUES ('test', %s, 'test', now() + interval '1 hour')", (hostile,))
        conn.commit()
    body = f".catalog={CATALOG}&.code={sku(1)}&.id=item-1&.quantity=1&.price=9.90".encode()
    status, lines = exchange(service, platform_request(service, body))
    assert (status, header_line(lines, "Available")) == (200, "Available: -1")
    assert header_line(lines, "Inventory-Message") == \
        "Inventory-Message: Checkout pauses until 03:00 - sorry! Set-Cookie: session=evil <b>Grusse</b>"
    assert not [line for line in lines if line.lower().startswith("set-cookie")]
    with connect(shop) as conn:
        conn.execute("UPDATE shop.checkout_freezes SET shopper_message = %s", ("Wait " + "ä" * 1000,))
        conn.commit()
    status, lines = exchange(service, platform_request(service, body))
    assert header_line(lines, "Inventory-Message") == "Inventory-Message: Wait " + "a" * 295


def test_item_in_stock(service: AvailabilityProcess, shop: str) -> None:
    response = ask(service, {".code": sku(1), ".quantity": "2", ".name": "Demo", ".price": "9.90",
                             ".url": "/p/1"})  # unknown dot keys are information
    assert response.status_code == 200
    assert available(response) == 7 == shop_qty(shop, sku(1))[0]
    assert response.headers["X-Inventory-Status"] == "available"
    assert response.headers["X-Inventory-Sku"] == sku(1)
    assert response.headers["X-Inventory-Source"] == "shop"
    assert response.headers["Cache-Control"] == "no-store"
    # more than there is: the number stays the truth, the message says how many
    limited = ask(service, {".code": sku(1), ".quantity": "9"})
    assert available(limited) == 7
    assert limited.headers["X-Inventory-Status"] == "limited"
    assert limited.headers["Inventory-Message"] == "Only 7 available."
    # an item with lots of stock: the WMS's figure the shop was seeded with
    assert available(ask(service, {".code": sku(10)})) == shop_qty(shop, sku(10))[0]


def test_item_out_of_stock_disabled_or_without_stock_row_is_not_available(service: AvailabilityProcess,
                                                                          shop: str) -> None:
    for name, why in ((sku(2), "out_of_stock"), (sku(3), "disabled"), (sku(4), "no_stock_row")):
        response = ask(service, {".code": name, ".quantity": "1"})
        assert (response.status_code, available(response), cause(response)) == (200, 0, why)
        assert response.headers["X-Inventory-Status"] == "unavailable"
        assert response.headers["Inventory-Message"] == "Sorry, this item is out of stock."
    # checkout agrees: it refuses each of them
    with psycopg.connect(shop, autocommit=True) as conn:
        assert place(conn, [(sku(2), 1)]) is None
        assert place(conn, [(sku(4), 1)]) is None


def test_unknown_sku_answers_unknown_and_is_counted(service: AvailabilityProcess, shop: str) -> None:
    response = ask(service, {".code": "NO-SUCH-PRODUCT"})
    assert response.status_code == 200
    assert available(response) < 0
    assert response.headers["X-Inventory-Status"] == "unknown"
    assert cause(response) == "unknown_sku"
    metrics = requests.get(f"{service.url}/metrics", headers={SECRET_HEADER: service.secret or ""}, timeout=5)
    assert 'stocksync_availability_requests_total{result="unknown",cause="unknown_sku"}' in metrics.text


def test_options_map_to_skus(service: AvailabilityProcess, shop: str, store: str) -> None:
    with connect(store) as conn:
        upsert_mapping(conn, "TSHIRT", {"Size": "M", "Colour": "Red"}, sku(11))
        upsert_mapping(conn, "TSHIRT", {"Size": "L", "Colour": "Red"}, sku(12))
        upsert_mapping(conn, "MUG", {}, sku(13))
        upsert_mapping(conn, "GHOST", {}, "SKU-9999999")  # not in the catalog
        conn.commit()
    set_shop(shop, sku(11), 4)
    set_shop(shop, sku(12), 9)
    # order, letter case and spacing of the options do not matter; an empty option is no option
    response = ask(service, [(".code", "TSHIRT"), ("colour ", "red"), ("SIZE", " m "), ("gift message", "")])
    assert (available(response), response.headers["X-Inventory-Sku"]) == (4, sku(11))
    assert available(ask(service, [(".code", "TSHIRT"), ("Size", "L"), ("Colour", "Red")])) == 9
    # a combination without a mapping: unknown, never another variant's stock
    unmapped = ask(service, [(".code", "TSHIRT"), ("Size", "XL"), ("Colour", "Red")])
    assert (available(unmapped), cause(unmapped)) == (-1, "unmapped_options")
    no_options = ask(service, [(".code", "TSHIRT")])
    assert (available(no_options), cause(no_options)) == (-1, "unmapped_options")
    # a mapping without options; a mapping that points nowhere
    assert ask(service, [(".code", "MUG")]).headers["X-Inventory-Sku"] == sku(13)
    assert cause(ask(service, [(".code", "GHOST")])) == "mapped_sku_missing"
    # fallback: a code with no mapping is the SKU, whatever options come with it
    assert available(ask(service, [(".code", sku(1)), ("Engraving", "Hi")])) == 7


@pytest.mark.parametrize(("body", "content_type", "status", "why"), [
    (b'{".code": "SKU-0000001"}', "application/json", 415, "not_form_encoded"),
    (b"--x\r\nContent-Disposition: form-data; name=\".code\"\r\n\r\nSKU-0000001\r\n--x--",
     "multipart/form-data; boundary=x", 415, "not_form_encoded"),
    (b".code=SKU-0000001", f"{FORM}; charset=utf-16", 415, "unsupported_charset"),
    (b".id=17&.quantity=1", FORM, 400, "missing_code"),
    (b".code=&.quantity=1", FORM, 400, "missing_code"),
    (b"\xff\xfe\x00garbage\x9c", FORM, 400, "bad_encoding"),
    (b".code=%FF%FE", FORM, 400, "bad_encoding"),
    (b".code=SKU-0000001%00", FORM, 400, "control_character"),
    (b".code=SKU-0000001%0D%0AX-Evil:%201", FORM, 400, "control_character"),
    (b".code=A&.code=B", FORM, 400, "repeated_field"),
    (b".code=A&size=M&Size=L", FORM, 400, "repeated_option"),
    (b"=value&.code=A", FORM, 400, "bad_form"),
    (b"&".join(b"k%d=v" % i for i in range(70)) + b"&.code=A", FORM, 400, "too_many_fields"),
    (b".code=" + b"A" * 300, FORM, 400, "field_too_long"),
])
def test_bad_bodies_are_refused_in_the_answer_format(service: AvailabilityProcess, shop: str, body: bytes,
                                                     content_type: str, status: int, why: str) -> None:
    response = ask(service, body=body, headers={"Content-Type": content_type})
    assert (response.status_code, cause(response)) == (status, why)
    assert available(response) < 0
    assert response.headers["X-Inventory-Status"] == "rejected"
    assert "\n" not in response.headers["Inventory-Message"]


def test_oversized_body_is_refused_before_it_is_read(service: AvailabilityProcess, shop: str) -> None:
    big = ask(service, body=b".code=SKU-0000001&pad=" + b"x" * 9000)
    assert (big.status_code, cause(big)) == (413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, counted while it arrives
        yield b".code=SKU-0000001&pad="
        for _ in range(20):
            yield b"y" * 1000

    chunked = ask(service, body=chunks())  # type: ignore[arg-type]
    assert (chunked.status_code, cause(chunked)) == (413, "body_too_large")
    # a client announcing 10 MB gets its answer without sending a byte of it
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        sock.sendall(f"POST {service.path} HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {service.secret}\r\n"
                     f"Content-Type: {FORM}\r\nContent-Length: 10000000\r\n\r\n".encode())
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413")
    assert "\r\nAvailable: -1\r\n" in head


# --------------------------------------------------------------------------- who may ask
def test_no_credentials_or_wrong_secret_is_refused_without_the_database(service: AvailabilityProcess, shop: str,
                                                                       no_database: AvailabilityProcess) -> None:
    item = {".code": sku(1)}
    assert cause(ask(service, item, secret=None)) == "no_credentials"
    assert ask(service, item, secret=None).status_code == 403
    assert (ask(service, item, secret="x" * 32).status_code, cause(ask(service, item, secret="wrong"))) == \
        (403, "wrong_secret")
    assert cause(ask(service, item, secret=(service.secret or "") + "x")) == "wrong_secret"
    # the platform may only be able to send a URL: the secret as a query parameter
    by_query = ask(service, item, secret=None, params={"secret": service.secret or ""})
    assert (by_query.status_code, available(by_query)) == (200, 7)
    # refused before any database work: the service without a database refuses the same way
    assert cause(ask(no_database, item, secret="wrong")) == "wrong_secret"
    assert cause(ask(no_database, item, secret=None)) == "no_credentials"
    # the metrics are protected like the script
    assert requests.get(f"{service.url}/metrics", timeout=5).status_code == 403


def test_callers_outside_the_allowed_ranges_are_refused(shop: str, store: str) -> None:
    secret = new_secret()
    elsewhere = AvailabilityProcess({"SHOP_DSN": shop, "STOCKSYNC_DSN": store, "SECRET": secret,
                                     "ALLOWED_NETWORKS": "10.0.0.0/8,192.0.2.0/24"})
    with elsewhere:
        response = ask(elsewhere, {".code": sku(1)})
        assert (response.status_code, cause(response)) == (403, "forbidden_ip")
        # X-Forwarded-For is not believed unless FORWARDED_ALLOW_IPS names the proxy
        spoofed = ask(elsewhere, {".code": sku(1)}, headers={"X-Forwarded-For": "10.1.2.3"})
        assert (spoofed.status_code, cause(spoofed)) == (403, "forbidden_ip")
        # the platform's validation request too: the merchant learns the address is not allowed
        status, lines = exchange(elsewhere, platform_request(elsewhere, VALIDATION_BODY))
        assert (status, header_line(lines, "Available")) == (403, "Available: -1")
    # IP ranges alone (no secret), set explicitly: localhost may ask without a secret
    ip_only = AvailabilityProcess({"SHOP_DSN": shop, "STOCKSYNC_DSN": store, "ALLOWED_NETWORKS": "127.0.0.0/8"})
    with ip_only:
        assert available(ask(ip_only, {".code": sku(1)}, secret=None)) == 7


@pytest.mark.parametrize(("settings", "named"), [
    ({}, "STOCKSYNC_AVAILABILITY_SECRET"),
    ({"SECRET": "short-secret"}, "STOCKSYNC_AVAILABILITY_SECRET"),
    ({"SECRET": "", "ALLOWED_NETWORKS": ""}, "STOCKSYNC_AVAILABILITY_SECRET"),
    ({"SECRET": "0123456789abcdef-long-enough", "LIVE_MODE": "true"}, "WMS_URL"),
])
def test_refuses_to_start_without_authentication_or_with_bad_settings(shop_dsn: str, settings: dict[str, str],
                                                                      named: str) -> None:
    svc = AvailabilityProcess({"SHOP_DSN": shop_dsn, **settings})
    result = subprocess.run([sys.executable, "-m", "include.stocksync.availability", "--port", str(svc.port)],
                            env=svc.env(), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "short-secret" not in result.stderr  # a rejected secret is not echoed


def test_rate_limit_per_client(shop: str, store: str) -> None:
    limited = AvailabilityProcess({"SHOP_DSN": shop, "STOCKSYNC_DSN": store, "SECRET": new_secret(),
                                   "RATE_LIMIT_PER_SECOND": "0.5", "RATE_LIMIT_BURST": "3"})
    body = f".catalog={CATALOG}&.code={sku(1)}&.id=item-1&.quantity=1&.price=9.90".encode()
    with limited:
        answers = [exchange(limited, platform_request(limited, body)) for _ in range(5)]
        assert [status for status, _ in answers] == [200, 200, 200, 429, 429]
        assert header_line(answers[0][1], "Available") == "Available: 7"
        assert header_line(answers[3][1], "Available") == "Available: -1"
        assert header_line(answers[3][1], "X-Inventory-Cause") == "X-Inventory-Cause: rate_limited"
        assert int(header_line(answers[3][1], "Retry-After").split(": ")[1]) >= 1
        # the platform's validation request is limited like any other
        status, lines = exchange(limited, platform_request(limited, VALIDATION_BODY))
        assert (status, header_line(lines, "Available")) == (429, "Available: -1")
        # another client (another loopback address) has its own bucket
        status, lines = exchange(limited, platform_request(limited, body), source="127.0.0.2")
        assert (status, header_line(lines, "Available")) == (200, "Available: 7")


# --------------------------------------------------------------------------- when the number cannot be known
def test_database_down_answers_unknown(no_database: AvailabilityProcess) -> None:
    """Nothing listens on the database's port: unknown at once (refused connect, then marked down)."""
    for _ in range(3):
        response = ask(no_database, {".code": sku(1)}, timeout=2)
        assert response.status_code == 200
        assert available(response) < 0
        assert cause(response) in ("db_connect", "db_down")


def test_database_that_never_answers_answers_unknown_within_the_budget(shop: str) -> None:
    """A database that accepts the TCP connection and then says nothing (a hung server, a network
    that drops packets): libpq alone would wait at least 2 s (its smallest connect_timeout); the
    request must end at the service's budget (200 ms). The client's 1.5 s timeout is the hang
    detector, not a speed target."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes handshakes; nobody ever reads
    try:
        svc = AvailabilityProcess({"SHOP_DSN": f"postgresql://postgres:x@127.0.0.1:{silent.getsockname()[1]}/shop",
                                   "SECRET": new_secret(), "DB_BUDGET_MS": "200", "DB_RETRY_MS": "300"})
        with svc:
            causes = set()
            for _ in range(4):
                response = ask(svc, {".code": sku(1)}, timeout=1.5)
                assert (response.status_code, available(response)) == (200, -1)
                causes.add(cause(response))
                time.sleep(0.2)
            assert causes <= {"db_timeout", "db_down"} and "db_timeout" in causes
    finally:
        silent.close()


class SlowToConnect:
    """A TCP relay to the database that lets each new connection through only after `delay`
    seconds (a busy server forking a backend, a distant database): every connect takes longer
    than the service's per-request budget; the connection is normal afterwards."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port, self.delay = upstream_port, delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.sock.settimeout(0.2)
        self.relayed: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            self.relayed.append(client)  # a cut breaks a connection still waiting out its delay too
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        time.sleep(self.delay)
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self.relayed.append(upstream)
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Break every relayed connection, those still waiting out their delay included (the
        service's pool may have one being opened: under load it completed after the cut and the
        first answer after it was a number)."""
        for sock in self.relayed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stopped.set()
        self.cut()
        self.sock.close()


def test_database_slower_to_connect_than_the_budget_still_gets_connected(shop: str, store: str) -> None:
    """Each connect takes 0.6 s, the budget is 0.2 s. The service's first connection (opened at
    start, without a request's budget) is cut: the answers are unknown until a new connection
    is open, and the connect started meanwhile serves the next ones (a connect cut at each
    request's budget would never complete, and every answer would stay unknown)."""
    relay = SlowToConnect(int(conninfo_to_dict(shop)["port"]), delay=0.6)
    try:
        svc = AvailabilityProcess({"SHOP_DSN": make_conninfo(shop, host="127.0.0.1", port=relay.port),
                                   "STOCKSYNC_DSN": store, "SECRET": new_secret(), "DB_BUDGET_MS": "200"})
        with svc:
            assert wait_for(lambda: available(ask(svc, {".code": sku(1)}, timeout=5)) == 7, timeout=20)
            relay.cut()
            first = ask(svc, {".code": sku(1)}, timeout=5)
            assert (first.status_code, available(first)) == (200, -1)
            assert wait_for(lambda: available(ask(svc, {".code": sku(1)}, timeout=5)) == 7, timeout=20), \
                svc.log()[-2000:]
    finally:
        relay.stop()


def test_stalled_database_answers_unknown_then_recovers(service: AvailabilityProcess, shop: str) -> None:
    """The stock table locked by maintenance (ACCESS EXCLUSIVE blocks even reads): unknown within the
    budget (300 ms; the client's 3 s timeout only detects a hang); numbers again once it is free."""
    with psycopg.connect(shop) as blocker:
        blocker.execute("LOCK TABLE shop.stock IN ACCESS EXCLUSIVE MODE")
        response = ask(service, {".code": sku(1)}, timeout=3)
        assert (available(response), cause(response)) == (-1, "db_timeout")
        blocker.rollback()
    assert wait_for(lambda: available(ask(service, {".code": sku(1)})) == 7, timeout=5)


def test_overloaded_worker_sheds_at_once_with_unknown_and_counts_it(shop: str, store: str) -> None:
    """A worker allowed one request in flight (MAX_IN_FLIGHT=1; shipped: 16), holding one that waits
    on a locked stock table (the budget is 10 s, so it waits): further requests are answered
    unknown at once, before their turn, and counted. Without the bound they would queue behind it."""
    svc = AvailabilityProcess({"SHOP_DSN": shop, "STOCKSYNC_DSN": store, "SECRET": new_secret(),
                               "RATE_LIMIT_PER_SECOND": "0", "MAX_IN_FLIGHT": "1", "DB_BUDGET_MS": "10000"})
    body = f".catalog={CATALOG}&.code={sku(1)}&.id=item-1&.quantity=1&.price=9.90".encode()
    first: list[tuple[int, list[str]]] = []
    with svc, psycopg.connect(shop) as blocker:
        assert header_line(exchange(svc, platform_request(svc, body))[1], "Available") == "Available: 7"
        blocker.execute("LOCK TABLE shop.stock IN ACCESS EXCLUSIVE MODE")
        held = threading.Thread(target=lambda: first.append(exchange(svc, platform_request(svc, body))))
        held.start()
        with psycopg.connect(shop, autocommit=True) as watcher:  # the held request is waiting on the lock
            assert wait_for(lambda: watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'stocksync-availability' "
                "AND wait_event_type = 'Lock'").fetchone()[0] == 1, timeout=10)  # type: ignore[index]
        shed = [exchange(svc, platform_request(svc, b)) for b in (body, body, VALIDATION_BODY)]
        for status, lines in shed:
            assert status == 200
            assert header_line(lines, "Available") == "Available: -1"
            assert header_line(lines, "X-Inventory-Cause") == "X-Inventory-Cause: overloaded"
            assert header_line(lines, "Inventory-Message") == \
                "Inventory-Message: We cannot confirm availability right now. Please try again in a moment."
        assert first == [], "the held request was answered before the shed ones"
        metrics = requests.get(f"{svc.url}/metrics", headers={SECRET_HEADER: svc.secret or ""}, timeout=5).text
        assert "stocksync_availability_shed_total 3\n" in metrics
        assert 'stocksync_availability_requests_total{result="unknown",cause="overloaded"} 3\n' in metrics
        blocker.rollback()
        held.join(15)
        assert header_line(first[0][1], "Available") == "Available: 7"
        # the slot is free again: answered, not shed
        assert header_line(exchange(svc, platform_request(svc, body))[1], "Available") == "Available: 7"


def test_live_requests_waiting_on_the_wms_are_not_shed(shop: str, store: str) -> None:
    """Live mode, MAX_IN_FLIGHT=1, a WMS that accepts the connection and never answers: a request
    waiting on it holds no slot (it uses neither CPU nor the database), so the next request is
    answered, not shed; the waiting one falls back to the shop's number at the WMS budget."""
    wms = HangingServer()
    svc = AvailabilityProcess({"SHOP_DSN": shop, "STOCKSYNC_DSN": store, "SECRET": new_secret(),
                               "RATE_LIMIT_PER_SECOND": "0", "MAX_IN_FLIGHT": "1", "LIVE_MODE": "true", "WMS_URL": f"http://127.0.0.1:{wms.port}",
                               "WMS_TOKEN": TEST_TOKEN, "WMS_BUDGET_MS": "5000"})
    body = f".catalog={CATALOG}&.code={sku(1)}&.id=item-1&.quantity=1&.price=9.90".encode()
    first: list[tuple[int, list[str]]] = []
    try:
        with svc:
            waiting = threading.Thread(target=lambda: first.append(exchange(svc, platform_request(svc, body))))
            waiting.start()
            assert wait_for(lambda: wms.accepted, timeout=10), "the live request never reached the WMS"
            status, lines = exchange(svc, platform_request(svc, VALIDATION_BODY))
            assert (status, header_line(lines, "X-Inventory-Cause")) == (200, "X-Inventory-Cause: probe")
            waiting.join(15)
            assert header_line(first[0][1], "Available") == "Available: 7"
            assert header_line(first[0][1], "X-Inventory-Live") == "X-Inventory-Live: fallback; cause=wms_timeout"
    finally:
        wms.stop()


def test_connections_killed_under_the_service_recover(service: AvailabilityProcess, shop: str) -> None:
    assert available(ask(service, {".code": sku(1)})) == 7
    with psycopg.connect(shop, autocommit=True) as admin:
        killed = [row[0] for row in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'stocksync-availability'")]
        assert killed
        for pid in killed:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # the server has ended those sessions (what a restart or a failover does to the idle pool; the
        # pool may meanwhile open new ones)
        assert wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY (%s)",
                                              (killed,)).fetchone() == (0,), timeout=10)
    answers = [ask(service, {".code": sku(1)}) for _ in range(6)]
    # every idle connection the server ended is left in the pool, not handed to a request
    assert [(r.status_code, available(r)) for r in answers] == [(200, 7)] * 6


def test_checkout_frozen_answers_unknown_with_the_freeze_message(service: AvailabilityProcess, shop: str) -> None:
    with connect(shop) as conn:
        conn.execute("INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, expires_at) "
                     "VALUES ('test', 'Checkout pauses until 03:00 — sorry!', 'test', now() + interval '1 hour')")
        conn.commit()
    response = ask(service, {".code": sku(1)})
    assert (available(response), cause(response)) == (-1, "checkout_frozen")
    # the platform's header: ASCII, the dash spelled as one; ours: the exact text percent-encoded (UTF-8)
    assert response.headers["Inventory-Message"] == "Checkout pauses until 03:00 - sorry!"
    assert response.headers["X-Inventory-Message"] == "Checkout pauses until 03:00 %E2%80%94 sorry!"


# --------------------------------------------------------------------------- live mode
def test_live_mode_writes_the_wms_figure_back_and_answers_it(live_service: AvailabilityProcess, shop: str,
                                                             store: str, wms: Any) -> None:
    name = sku(7)
    wms.admin.set_items([{"sku": name, "on_hand": 60, "non_usable": 2, "allocated": 8}])  # available 50
    set_shop(shop, name, 20, seq=0)
    with psycopg.connect(shop, autocommit=True) as conn:
        unsent = [place(conn, [(name, 3)]), place(conn, [(name, 4), (sku(8), 1)])]  # 7 units the WMS never saw
        pushed = place(conn, [(name, 5)])  # sent to the WMS and acknowledged: counted there
        old = place(conn, [(name, 1)])  # unsent but older than the window
        cancelled = place(conn, [(name, 2)])  # unsent but cancelled
        assert None not in (*unsent, pushed, old, cancelled)
        assert wms.admin.push_order(f"shop-order-{pushed}", [{"sku": name, "qty": 5}]).status_code == 201
        conn.execute("UPDATE shop.orders SET wms_acknowledged_at = clock_timestamp(), status = 'paid' "
                     "WHERE order_id = %s", (pushed,))
        conn.execute("UPDATE shop.orders SET created_at = now() - interval '2 days' WHERE order_id = %s", (old,))
        conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = %s", (cancelled,))
    wms_item = wms.admin.items([name])[0]
    assert wms_item["available"] == 45
    shop_before = shop_qty(shop, name)[0]
    assert shop_before == 20 - 3 - 4 - 5 - 1 - 2

    response = ask(live_service, {".code": name})
    assert response.headers["X-Inventory-Live"] == "written"
    assert response.headers["X-Inventory-Source"] == "live"
    assert available(response) == 45 - 7 == 38
    assert shop_qty(shop, name) == (38, wms_item["seq"])
    with connect(store) as conn:  # recorded in stocksync's own database
        audit = conn.execute("SELECT run_id, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome "
                             "FROM stocksync.sku_audit WHERE sku = %s", (name,)).fetchall()
        run = conn.execute("SELECT run_id, dag_id, status, changed FROM stocksync.sync_runs "
                           "WHERE dag_id = 'availability_live'").fetchall()
    run_id = f"availability_live__{datetime.now(UTC).date().isoformat()}"
    assert audit == [(run_id, shop_before, 0, 45, wms_item["seq"], 7, 38, "changed")]
    assert run == [(run_id, "availability_live", "applied", 1)]

    # asked again, nothing moved in the WMS: the shop is current, no second write
    again = ask(live_service, {".code": name})
    assert (available(again), again.headers["X-Inventory-Live"]) == (38, "current")
    # what was answered is what checkout accepts
    with psycopg.connect(shop, autocommit=True) as conn:
        assert place(conn, [(name, 39)]) is None
        assert place(conn, [(name, 38)]) is not None


def test_live_mode_never_writes_an_older_wms_state(live_service: AvailabilityProcess, shop: str, wms: Any) -> None:
    name = sku(9)
    wms_item = wms.admin.items([name])[0]
    set_shop(shop, name, 3, seq=wms_item["seq"] + 100)  # the shop already applied a newer WMS state
    response = ask(live_service, {".code": name})
    assert (available(response), response.headers["X-Inventory-Live"]) == (3, "current")
    assert shop_qty(shop, name) == (3, wms_item["seq"] + 100)


@pytest.mark.parametrize(("faults", "why"), [
    ({"latency_ms": 1000}, "wms_timeout"),
    ({"fail_status": 503, "fail_count": -1}, "wms_error"),
    ({"corrupt": [{"sku": "SKU-0000010", "field": "available", "value": "__NaN__"}]}, "wms_bad_answer"),
])
def test_live_mode_falls_back_to_the_shop_number(live_service: AvailabilityProcess, shop: str, wms: Any,
                                                 faults: dict[str, Any], why: str) -> None:
    """The WMS slow, failing or talking nonsense: the shop's number, within the WMS budget (150 ms;
    the WMS answers after 1 s, and the client's 0.9 s timeout would fire first if we waited for it)."""
    name = sku(10)
    set_shop(shop, name, 12, seq=0)
    wms.admin.faults(**faults)
    response = ask(live_service, {".code": name}, timeout=0.9)
    assert available(response) == 12
    assert response.headers["X-Inventory-Live"] == f"fallback; cause={why}"
    assert response.headers["X-Inventory-Source"] == "shop"
    assert shop_qty(shop, name) == (12, 0)  # nothing written
    metrics = requests.get(f"{live_service.url}/metrics", headers={SECRET_HEADER: live_service.secret or ""},
                           timeout=5).text
    assert f'stocksync_availability_live_fallback_total{{cause="{why}"}}' in metrics


# --------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("mode", ["shop", "live"])
def test_answers_never_exceed_what_checkout_accepts(service: AvailabilityProcess, live_service: AvailabilityProcess,
                                                    shop: str, wms: Any, mode: str) -> None:
    """Shoppers check out while others ask. Stock only goes down here (no restock; in live mode the
    WMS's available figure stays put while its sequence moves, so every write-back must write what
    the shop already has), so an answer must lie between the stock read just before the request
    and the stock read just after the answer: above the first is a promise checkout would break,
    below the second a sale lost. At the end, units are conserved: initial = sold + left (a live
    write-back racing an order would hand the order's units back)."""
    svc = live_service if mode == "live" else service
    names = [sku(i) for i in (21, 22, 23)]
    initial = 100
    wms.admin.set_items([{"sku": n, "on_hand": initial, "non_usable": 0, "allocated": 0} for n in names])
    for n in names:
        set_shop(shop, n, initial, seq=0)
    done = threading.Event()
    errors: list[str] = []
    sold: dict[str, int] = dict.fromkeys(names, 0)
    sold_lock = threading.Lock()
    live_writes = [0]

    def shopper(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(shop, autocommit=True) as conn:
            refusals = 0
            while refusals < 30:
                n, q = rng.choice(names), rng.randint(1, 3)
                if place(conn, [(n, q)]) is None:
                    refusals += 1
                else:
                    with sold_lock:
                        sold[n] += q
                time.sleep(rng.uniform(0, 0.004))

    def asker(seed: int) -> None:
        rng = random.Random(seed)
        with psycopg.connect(shop, autocommit=True) as conn, requests.Session() as session:
            read = "SELECT qty FROM shop.stock WHERE sku = %s"
            while not done.is_set():
                n = rng.choice(names)
                before = conn.execute(read, (n,)).fetchone()[0]  # type: ignore[index]
                response = ask(svc, {".code": n}, session=session)
                after = conn.execute(read, (n,)).fetchone()[0]  # type: ignore[index]
                a = available(response)
                if response.headers.get("X-Inventory-Live") == "written":
                    live_writes[0] += 1
                if not after <= a <= before:
                    errors.append(f"{n}: answered {a}, stock was {before} before and {after} after "
                                  f"({response.headers.get('X-Inventory-Live')})")

    def wms_mover() -> None:  # live mode: the WMS state changes (new seq), available stays
        while not done.is_set():
            wms.admin.set_items([{"sku": n, "on_hand": initial} for n in names])
            time.sleep(0.02)

    shoppers = [threading.Thread(target=shopper, args=(i,)) for i in range(3)]
    others = [threading.Thread(target=asker, args=(100 + i,)) for i in range(3)]
    if mode == "live":
        others.append(threading.Thread(target=wms_mover))
    for t in shoppers + others:
        t.start()
    for t in shoppers:
        t.join(120)
    done.set()
    for t in others:
        t.join(30)
    assert not errors, errors[:10]
    for n in names:
        left = shop_qty(shop, n)[0]
        assert left + sold[n] == initial, (n, left, sold[n])
        final = ask(svc, {".code": n})
        assert available(final) == left
    assert sum(sold.values()) > 0
    if mode == "live":
        assert live_writes[0] >= 3, "the live write-back never raced the shoppers; the test proved nothing"


# --------------------------------------------------------------------------- observability
def test_counters_reach_the_stats_table_and_the_page_query(service: AvailabilityProcess, shop: str,
                                                           store: str) -> None:
    ask(service, {".code": sku(1)})
    ask(service, {".code": sku(2)})
    ask(service, {".code": "NOPE"})
    ask(service, {".code": sku(1)}, secret="wrong")
    ask(service, body=VALIDATION_BODY)

    def recent() -> list[Any]:
        with connect(store) as conn:
            cur = conn.execute(query("availability/select_recent_stats"), {"hours": 24})
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def complete() -> list[Any]:
        rows = recent()
        return rows if rows and sum(r["requests"] for r in rows) >= 5 else []

    rows = wait_for(complete, timeout=10)
    assert rows, "the service never wrote its counters"
    hour = rows[0]
    assert hour["requests"] >= 5 and hour["available"] >= 1 and hour["unavailable"] >= 1
    assert hour["unknown_causes"].get("unknown_sku", 0) >= 1
    assert hour["rejected_causes"].get("wrong_secret", 0) >= 1
    assert hour["probes"] >= 1
    assert hour["latency_p99_le_ms"] is None or hour["latency_p99_le_ms"] >= hour["latency_p50_le_ms"]
    assert hour["latency_max_ms"] > 0


def test_every_answer_is_logged_with_its_latency_and_never_the_secret(service: AvailabilityProcess,
                                                                      shop: str) -> None:
    marker = f"LOGCHECK-{random.randrange(10**9)}"
    ask(service, {".code": marker})
    ask(service, {".code": marker}, secret=None, params={"secret": service.secret or ""})
    ask(service, {".code": marker}, secret="wrong-secret-value-123")
    log = wait_for(lambda: service.log() if service.log().count(marker) >= 2 else "", timeout=5)
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) == 2 and all(" ms=" in line for line in lines)
    assert "cause=wrong_secret" in log
    assert service.secret and service.secret not in log
    assert "wrong-secret-value-123" not in log
    password = shop.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    assert not password or password not in log


def test_wms_single_item_route(wms: Any) -> None:
    wms.admin.reset(SKUS, 5)
    session = requests.Session()
    item = session.get(f"{wms.url}/v1/stock/items/{sku(3)}", headers={"Authorization": f"Bearer {TEST_TOKEN}"},
                       timeout=5).json()
    assert {k: item[k] for k in ("sku", "on_hand", "non_usable", "allocated", "available", "seq")} == \
        wms.admin.items([sku(3)])[0]
    assert datetime.fromisoformat(item["taken_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert session.get(f"{wms.url}/v1/stock/items/{sku(3)}", timeout=5).status_code == 401
    assert session.get(f"{wms.url}/v1/stock/items/SKU-9999999", headers={"Authorization": f"Bearer {TEST_TOKEN}"},
                       timeout=5).status_code == 404
