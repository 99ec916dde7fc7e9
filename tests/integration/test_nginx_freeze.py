"""The checkout freeze on a platform whose checkout stocksync cannot change: Debian's real nginx
with the shipped snippet (deploy/nginx/stocksync/) in front of a stand-in storefront, asking the
real availability service, which reads stocksync's freeze from the test PostgreSQL shop.

The main service runs with `FREEZE_CACHE_MS=0` (shipped: 250) so that a freeze set, released or
expired is seen by the very next request; the cache itself is tested on its own
(`test_gate_cache_*`, which use a longer cache than shipped, so that nothing depends on speed).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from devstack.availability_process import AvailabilityProcess, free_port, new_secret
from devstack.nginx_front import NginxFront, Storefront
from include.stocksync.availability.checkout_gate import CheckoutGate
from include.stocksync.availability.pool import ConnectionPool
from include.stocksync.shop import freeze
from include.stocksync.shop.postgres.live import PostgresLiveShop
from include.stocksync.store.db import connect

MESSAGE = 'Back soon \u2014 <b>"Gr\u00fcn" & co</b>\r\nthanks'
# the message as the shopper reads it: one line, whitespace runs one space
MESSAGE_TEXT = 'Back soon \u2014 <b>"Gr\u00fcn" & co</b> thanks'
# HTML 5 character references, written out by hand: & < > " escaped, non-ASCII as numeric references
MESSAGE_HTML = "Back soon &#8212; &lt;b&gt;&quot;Gr&#252;n&quot; &amp; co&lt;/b&gt; thanks"
FALLBACK_TEXT = "Checkout is paused for a few minutes while we update our stock. Please try again shortly."
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
MAGENTO_JS = {"Accept": "application/json, text/javascript, */*; q=0.01", "Content-Type": "application/json"}

MAGENTO_CHECKOUT = [
    ("GET", "/checkout/"), ("GET", "/checkout/index/index"), ("GET", "/CHECKOUT"),
    ("GET", "/index.php/checkout/"), ("GET", "/default/checkout/onepage/success/"),
    ("GET", "/%63heckout/"),  # percent-encoded: nginx's normalised path matches
    ("POST", "/rest/default/V1/guest-carts/Xy12Ab/payment-information"),
    ("POST", "/rest/V1/carts/mine/payment-information"),
    ("PUT", "/rest/default/V1/carts/mine/order"),
    ("POST", "/rest/async/V1/guest-carts/Xy12Ab/payment-information"),
    ("POST", "/paypal/express/placeOrder/"), ("GET", "/multishipping/checkout/"),
]
MAGENTO_BROWSING = [
    ("GET", "/"), ("GET", "/women/tops.html"), ("GET", "/checkout/cart/"), ("POST", "/checkout/cart/add/product/7/"),
    ("GET", "/catalogsearch/result/?q=checkout"), ("GET", "/checkout-guide.html"),
    ("GET", "/rest/default/V1/guest-carts/Xy12Ab/totals"), ("POST", "/rest/V1/guest-carts/Xy12Ab/shipping-information"),
]
PRESTASHOP_CHECKOUT = [
    ("GET", "/order"), ("POST", "/en/order?action=placeOrder"), ("GET", "/fr-ca/order/"),
    ("GET", "/index.php?controller=order"), ("GET", "/index.php?id_lang=1&controller=ORDER&step=3"),
    ("GET", "/module/ps_wirepayment/validation"),
    ("GET", "/index.php?fc=module&module=ps_checkpayment&controller=validation"),
    ("GET", "/index.php?controller=%6frder"), ("GET", "/index.php?contr%6fller=order"),
]
PRESTASHOP_BROWSING = [
    ("GET", "/"), ("GET", "/en/3-clothes"), ("GET", "/en/order-history"),
    ("GET", "/index.php?controller=product&id_product=1"),
    ("GET", "/cart?action=show"), ("POST", "/cart?add=1&id_product=1"),
    ("GET", "/index.php?controller=orderdetail&id_order=4"),
]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def shop(shop_dsn: str) -> Iterator[str]:
    with connect(shop_dsn) as conn:
        conn.execute("TRUNCATE shop.checkout_freezes")
        conn.commit()
    yield shop_dsn
    with connect(shop_dsn) as conn:
        conn.execute("TRUNCATE shop.checkout_freezes")
        conn.commit()


@pytest.fixture
def open_checkout(shop: str) -> str:
    """No freeze, whatever an earlier test left."""
    with connect(shop) as conn:
        conn.execute("UPDATE shop.checkout_freezes SET released_at = clock_timestamp() WHERE released_at IS NULL")
        conn.commit()
    return shop


@pytest.fixture(scope="module")
def storefront() -> Iterator[Storefront]:
    front = Storefront()
    yield front
    front.stop()


@pytest.fixture(scope="module")
def service(shop: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AvailabilityProcess]:
    log = tmp_path_factory.mktemp("gate-service") / "service.log"
    with AvailabilityProcess({"SHOP_DSN": shop, "SECRET": new_secret(), "FREEZE_CACHE_MS": "0"},
                             log_path=log) as process:
        yield process


def front(root: Path, storefront: Storefront, service_port: int, secret: str, **kwargs: str) -> NginxFront:
    return NginxFront(root, storefront_port=storefront.port, service_port=service_port, secret=secret, **kwargs)


@pytest.fixture(scope="module")
def magento(tmp_path_factory: pytest.TempPathFactory, storefront: Storefront,
            service: AvailabilityProcess) -> Iterator[NginxFront]:
    assert service.secret is not None
    with front(tmp_path_factory.mktemp("nginx-magento"), storefront, service.port, service.secret) as nginx:
        yield nginx


@pytest.fixture(scope="module")
def prestashop(tmp_path_factory: pytest.TempPathFactory, storefront: Storefront,
               service: AvailabilityProcess) -> Iterator[NginxFront]:
    assert service.secret is not None
    with front(tmp_path_factory.mktemp("nginx-prestashop"), storefront, service.port, service.secret,
               platform="prestashop") as nginx:
        yield nginx


# --------------------------------------------------------------------------- helpers
def set_freeze(dsn: str, *, ttl: float = 600, message: str = MESSAGE, set_by: str = "nightly__test") -> freeze.Freeze:
    with connect(dsn) as conn:
        held = freeze.set_freeze(conn, set_by=set_by, reason="test", message=message, ttl_seconds=ttl)
        conn.commit()
    return held


def release(dsn: str, set_by: str = "nightly__test") -> None:
    with connect(dsn) as conn:
        freeze.release_freezes(conn, set_by=set_by)
        conn.commit()


def send(nginx: NginxFront, method: str, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.request(method, nginx.url + path, headers=headers or BROWSER, timeout=10,
                            data=b"{}" if method in ("POST", "PUT") else None)


def reached_shop(storefront: Storefront, method: str, path: str) -> bool:
    return any(seen == (method, path) for seen in storefront.received)


class _Text(HTMLParser):
    """The page's text and the elements in it (an injected <b> would show up here)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.message: list[str] = []
        self._in_message = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_message = ("id", "stocksync-freeze-message") in attrs

    def handle_endtag(self, tag: str) -> None:
        self._in_message = False

    def handle_data(self, data: str) -> None:
        if self._in_message:
            self.message.append(data)


def shopper_page(response: requests.Response) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(response.content.decode("ascii"))  # the page is ASCII: every other character a reference
    return "".join(parser.message), parser.tags


def assert_refused(response: requests.Response, text: str, *, max_retry_after: int) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert 1 <= int(response.headers["Retry-After"]) <= max_retry_after
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("text/html")
    message, tags = shopper_page(response)
    assert message == text
    assert "b" not in tags and "script" not in tags


# --------------------------------------------------------------------------- the gate in front of Magento
def test_frozen_checkout_refused_with_the_shopper_message_browsing_works(
        open_checkout: str, magento: NginxFront, storefront: Storefront) -> None:
    set_freeze(open_checkout, ttl=600)
    storefront.received.clear()
    for method, path in MAGENTO_CHECKOUT:
        response = send(magento, method, path)
        assert_refused(response, MESSAGE_TEXT, max_retry_after=600)
        assert MESSAGE_HTML in response.text, path
        assert not reached_shop(storefront, method, path), f"{method} {path} reached the shop while frozen"
    for method, path in MAGENTO_BROWSING:
        response = send(magento, method, path)
        assert response.status_code == 200, (method, path, response.status_code)
        assert response.text == f"storefront {method} {path}\n"


def test_frozen_checkout_call_from_magento_js_gets_json(open_checkout: str, magento: NginxFront) -> None:
    set_freeze(open_checkout, ttl=600)
    response = send(magento, "POST", "/rest/default/V1/guest-carts/Xy12Ab/payment-information", MAGENTO_JS)
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/json")
    assert 1 <= int(response.headers["Retry-After"]) <= 600
    assert response.json() == {"message": MESSAGE_TEXT}
    assert "<" not in response.text and "&" not in response.text  # inert if a script embeds it


def test_the_longest_message_reaches_the_shopper(open_checkout: str, magento: NginxFront) -> None:
    """A message of characters outside the BMP, escaped twice in the gate's headers, still fits
    nginx's buffer for them: the shopper reads its first 300 characters, not the fallback."""
    set_freeze(open_checkout, ttl=600, message="\U0001F600" * 400)
    assert_refused(send(magento, "GET", "/checkout/"), "\U0001F600" * 300, max_retry_after=600)
    js = send(magento, "POST", "/rest/V1/carts/mine/payment-information", MAGENTO_JS)
    assert js.json() == {"message": "\U0001F600" * 300}


def test_checkout_works_again_after_the_release(open_checkout: str, magento: NginxFront,
                                                storefront: Storefront) -> None:
    set_freeze(open_checkout, ttl=600)
    assert send(magento, "GET", "/checkout/").status_code == 503
    release(open_checkout)
    response = send(magento, "POST", "/rest/default/V1/guest-carts/Xy12Ab/payment-information", MAGENTO_JS)
    assert response.status_code == 200
    assert reached_shop(storefront, "POST", "/rest/default/V1/guest-carts/Xy12Ab/payment-information")


def test_a_manual_freeze_outlives_a_runs_release(open_checkout: str, magento: NginxFront) -> None:
    set_freeze(open_checkout, ttl=600, message="Maintenance until 22:00", set_by="ops:maintenance")
    set_freeze(open_checkout, ttl=600, set_by="nightly__test")
    release(open_checkout, "nightly__test")
    assert_refused(send(magento, "GET", "/checkout/"), "Maintenance until 22:00", max_retry_after=600)


def test_checkout_works_again_after_the_expiry(open_checkout: str, magento: NginxFront) -> None:
    held = set_freeze(open_checkout, ttl=2)
    assert_refused(send(magento, "GET", "/checkout/"), MESSAGE_TEXT, max_retry_after=2)
    wait_until_expired(open_checkout, held)
    assert send(magento, "GET", "/checkout/").text == "storefront GET /checkout/\n"


def wait_until_expired(dsn: str, held: freeze.Freeze) -> None:
    """Until the database's clock is past the freeze's expiry (nobody released it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with connect(dsn) as conn:
            row = conn.execute("SELECT clock_timestamp() > %s", (held.expires_at,)).fetchone()
        if row and row[0]:
            return
        time.sleep(0.1)
    raise AssertionError("the freeze did not expire")


def test_the_shops_own_403_stays_a_403(open_checkout: str, magento: NginxFront) -> None:
    set_freeze(open_checkout, ttl=600)
    response = send(magento, "GET", "/app/etc/env.php")
    assert response.status_code == 403
    assert "Retry-After" not in response.headers


# --------------------------------------------------------------------------- PrestaShop's URLs
def test_prestashop_checkout_urls_refused_browsing_works(open_checkout: str, prestashop: NginxFront,
                                                         storefront: Storefront) -> None:
    set_freeze(open_checkout, ttl=600)
    storefront.received.clear()
    for method, path in PRESTASHOP_CHECKOUT:
        assert_refused(send(prestashop, method, path), MESSAGE_TEXT, max_retry_after=600)
        assert not reached_shop(storefront, method, path), f"{method} {path} reached the shop while frozen"
    for method, path in PRESTASHOP_BROWSING:
        response = send(prestashop, method, path)
        assert response.status_code == 200, (method, path, response.status_code)
    release(open_checkout)
    for method, path in PRESTASHOP_CHECKOUT:
        assert send(prestashop, method, path).status_code == 200, (method, path)


# --------------------------------------------------------------------------- stocksync unreachable
@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_service_down_applies_the_fail_mode(open_checkout: str, storefront: Storefront, fail_mode: str,
                                            tmp_path: Path) -> None:
    """Nothing listens where the service should be: checkout follows the fail mode, browsing works."""
    with front(tmp_path / "nginx", storefront, free_port(), new_secret(), fail_mode=fail_mode) as nginx:
        checkout = send(nginx, "GET", "/checkout/")
        if fail_mode == "open":
            assert checkout.text == "storefront GET /checkout/\n"
        else:
            assert_refused(checkout, FALLBACK_TEXT, max_retry_after=60)
            assert checkout.headers["Retry-After"] == "60"
            js = send(nginx, "POST", "/rest/V1/carts/mine/payment-information", MAGENTO_JS)
            assert js.status_code == 503 and js.json() == {"message": FALLBACK_TEXT}
        assert send(nginx, "GET", "/women/tops.html").status_code == 200


@pytest.mark.parametrize("fail_mode", ["open", "closed"])
def test_service_without_its_database_or_refusing_nginx_applies_the_fail_mode(
        open_checkout: str, storefront: Storefront, service: AvailabilityProcess, fail_mode: str,
        tmp_path: Path) -> None:
    """The service is up, but cannot read the freeze (database down) or refuses a wrong secret:
    the same fail mode, never the frozen page with an empty message or an error page."""
    dead_db = f"postgresql://stocksync@127.0.0.1:{free_port()}/shop?connect_timeout=2"
    with AvailabilityProcess({"SHOP_DSN": dead_db, "SECRET": new_secret(), "FREEZE_CACHE_MS": "0"},
                             log_path=tmp_path / "dead-db.log") as no_db:
        assert no_db.secret is not None
        cases = [(no_db.port, no_db.secret), (service.port, new_secret())]
        for index, (port, secret) in enumerate(cases):
            with front(tmp_path / f"nginx{index}", storefront, port, secret, fail_mode=fail_mode) as nginx:
                checkout = send(nginx, "GET", "/checkout/")
                if fail_mode == "open":
                    assert checkout.text == "storefront GET /checkout/\n", (index, checkout.status_code)
                else:
                    assert_refused(checkout, FALLBACK_TEXT, max_retry_after=60)
    assert "cause=wrong_secret" in service.log()


# --------------------------------------------------------------------------- the gate's cache
def test_gate_cache_one_query_for_a_burst_and_never_past_the_freezes_expiry(open_checkout: str) -> None:
    held = set_freeze(open_checkout, ttl=2)

    async def scenario() -> tuple[list[freeze.CheckoutState], int, freeze.CheckoutState, int]:
        pool = ConnectionPool(open_checkout, size=2, retry_after=1, connect_timeout=5, connect_kwargs={})
        gate = CheckoutGate(PostgresLiveShop(pool.connection), cache_seconds=60)
        try:
            burst = await asyncio.gather(*(gate.state() for _ in range(25)))
            queries = gate.queries
            await asyncio.to_thread(wait_until_expired, open_checkout, held)
            after = await gate.state()
            return burst, queries, after, gate.queries
        finally:
            await pool.close()

    burst, queries, after, total = asyncio.run(scenario())
    assert all(state.shopper_message == MESSAGE for state in burst)
    assert queries == 1
    assert not after.frozen  # the 60 s cache did not keep an expired freeze
    assert total == 2


def test_checkout_freeze_route_answers(open_checkout: str, service: AvailabilityProcess) -> None:
    """The route nginx asks: 204 open, 403 frozen with the message in both forms, 401 to a wrong
    secret (never 403, which nginx would read as frozen)."""
    assert service.secret is not None
    url = f"{service.url}/checkout-freeze"
    assert requests.get(url, headers={"X-Inventory-Secret": service.secret}, timeout=10).status_code == 204
    set_freeze(open_checkout, ttl=600)
    frozen = requests.get(url, headers={"X-Inventory-Secret": service.secret}, timeout=10)
    assert frozen.status_code == 403
    assert frozen.headers["X-Stocksync-Freeze-Html"] == MESSAGE_HTML
    assert json.loads(frozen.headers["X-Stocksync-Freeze-Json"]) == MESSAGE_TEXT
    assert 1 <= int(frozen.headers["X-Stocksync-Retry-After"]) <= 600
    for secret in (None, new_secret()):
        refused = requests.get(url, headers={"X-Inventory-Secret": secret} if secret else {}, timeout=10)
        assert refused.status_code == 401
