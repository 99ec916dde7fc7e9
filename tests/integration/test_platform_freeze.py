"""The checkout freeze on Magento 2 and PrestaShop stores in MariaDB, end to end: stocksync sets the
freeze through the platform's adapter (its side table `stocksync_checkout_freeze`, created by the
adapter's own migration), Debian's real nginx with the shipped snippet asks the real availability
service (`SHOP_PLATFORM`, a mysql:// `SHOP_DSN`), which reads the freeze through the same port.
Checkout is refused with the shopper message while frozen, browsing goes on, and checkout works
again after the release and after the expiry. The service runs with `FREEZE_CACHE_MS=0` so the
very next request sees a change."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from devstack.availability_process import AvailabilityProcess, new_secret
from devstack.local_mariadb import LocalMariaDB
from devstack.nginx_front import NginxFront, Storefront
from include.stocksync.shop import freeze
from include.stocksync.shop.mysql_family import MySQLShop
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from tests.conftest import SplitDatabases
from tests.integration.mariadb_shops import mariadb_server, shop_dsn, store_rows  # noqa: F401 (fixture)

MESSAGE = "Back at {expected_end} \u2014 <b>stock</b> & co"
# (platform, table prefix, nginx platform, a checkout request, a browsing request)
PLATFORMS = [
    ("magento2", "mgf_", "magento2", ("POST", "/rest/default/V1/guest-carts/Xy12Ab/payment-information"),
     ("GET", "/women/tops.html")),
    ("prestashop", "psf_", "prestashop", ("POST", "/en/order?action=placeOrder"), ("GET", "/en/3-clothes")),
]
RUN = "nightly__platform-freeze"


@pytest.fixture(scope="module")
def storefront() -> Iterator[Storefront]:
    front = Storefront()
    yield front
    front.stop()


@pytest.fixture(scope="module", params=PLATFORMS, ids=[p[0] for p in PLATFORMS])
def store(request: pytest.FixtureRequest, mariadb: LocalMariaDB, storefront: Storefront,
          tmp_path_factory: pytest.TempPathFactory,
          split_databases: SplitDatabases) -> Iterator[tuple[ShopPort, NginxFront, tuple, tuple]]:
    platform, prefix, nginx_platform, checkout, browsing = request.param
    database = f"freeze_{platform}"
    mariadb.drop_database(database)
    mariadb.create_database(database)
    dsn = shop_dsn(mariadb, database)
    shop = open_shop(dsn, platform, table_prefix=prefix)
    assert isinstance(shop, MySQLShop)
    shop.create_platform_schema()
    root = tmp_path_factory.mktemp(f"gate-{platform}")
    settings = {"SHOP_DSN": dsn, "SHOP_PLATFORM": platform, "SHOP_TABLE_PREFIX": prefix, "SECRET": new_secret(),
                "STOCKSYNC_DSN": split_databases.stocksync, "FREEZE_CACHE_MS": "0"}
    with AvailabilityProcess(settings, log_path=root / "service.log") as service:
        assert service.secret is not None
        with NginxFront(root / "nginx", storefront_port=storefront.port, service_port=service.port,
                        secret=service.secret, platform=nginx_platform) as nginx:
            yield shop, nginx, checkout, browsing
    mariadb.drop_database(database)


def send(nginx: NginxFront, request: tuple[str, str]) -> requests.Response:
    method, path = request
    return requests.request(method, nginx.url + path, timeout=10, allow_redirects=False)


def reached(storefront: Storefront, request: tuple[str, str]) -> bool:
    return tuple(request) in storefront.received


def test_frozen_checkout_is_refused_until_the_release(store: tuple, storefront: Storefront) -> None:
    shop, nginx, checkout, browsing = store
    held = freeze.set_freeze(shop, set_by=RUN, reason="nightly sync", message=MESSAGE, ttl_seconds=600)
    storefront.received.clear()
    refused = send(nginx, checkout)
    assert refused.status_code == 503
    end = (held.expires_at.timestamp() + 59.999999) // 60 * 60  # the expiry rounded up to the minute
    expected_end = time.strftime("%H:%M UTC", time.gmtime(end))
    assert f"Back at {expected_end} &#8212; &lt;b&gt;stock&lt;/b&gt; &amp; co" in refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert not reached(storefront, checkout)
    browse = send(nginx, browsing)
    assert browse.status_code == 200 and reached(storefront, browsing)

    assert freeze.release_freezes(shop, set_by=RUN) == 1
    assert send(nginx, checkout).text == f"storefront {checkout[0]} {checkout[1]}\n"


def test_checkout_works_again_after_the_expiry(store: tuple, mariadb: LocalMariaDB) -> None:
    shop, nginx, checkout, _ = store
    held = freeze.set_freeze(shop, set_by="a-run-that-died", reason="nightly sync", message="closed",
                             ttl_seconds=2)
    assert send(nginx, checkout).status_code == 503
    database = f"freeze_{shop.platform}"
    deadline = time.monotonic() + 30
    while store_rows(mariadb, database, "SELECT UTC_TIMESTAMP(6) <= %s",
                     (held.expires_at.replace(tzinfo=None),))[0][0]:
        assert time.monotonic() < deadline, "the freeze did not expire"
        time.sleep(0.1)
    assert send(nginx, checkout).text == f"storefront {checkout[0]} {checkout[1]}\n"
    assert freeze.active_freezes(shop) == []  # nobody released it: the expiry reopened checkout


def test_the_freeze_is_a_side_table_of_stocksync(store: tuple, mariadb: LocalMariaDB) -> None:
    shop, *_ = store
    database = f"freeze_{shop.platform}"
    versions = [v for (v,) in store_rows(mariadb, database,
                                         f"SELECT version FROM {shop.prefix}stocksync_migration ORDER BY version")]
    assert "mysql_family/0001_checkout_freeze" in versions
    assert shop.migrate() == []  # applied once
