"""Parts of the availability service that need no service around them: settings validation, the
token bucket (with a clock the test moves), the WMS answer checks, the counters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from include.stocksync.availability.metrics import LATENCY_BOUNDS_MS, Metrics
from include.stocksync.availability.ratelimit import RateLimiter
from include.stocksync.availability.settings import load
from include.stocksync.availability.skus import RESOLUTION_CACHE_CHARS, ResolutionCache
from include.stocksync.availability.wms import parse_item
from include.stocksync.wms.errors import WmsError

BASE = {"STOCKSYNC_AVAILABILITY_SHOP_DSN": "postgresql://shop@127.0.0.1:5432/shop"}
SECRET = "s3cret-long-enough-1234"


def settings(**env: str) -> Any:
    return load({**BASE, **{f"STOCKSYNC_AVAILABILITY_{k}": v for k, v in env.items()}})


def test_no_secret_and_no_networks_refuses() -> None:
    with pytest.raises(ValidationError, match="refusing to start without authentication"):
        settings()


def test_networks_alone_are_enough_and_parse_from_a_comma_list() -> None:
    s = settings(ALLOWED_NETWORKS="10.0.0.0/8, 192.0.2.7,2001:db8::/32")
    assert [str(n) for n in s.allowed_networks] == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    assert s.secret is None


@pytest.mark.parametrize("bad", ["short", "has a space in it 123", "x" * 15])
def test_weak_or_unsafe_secrets_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValidationError) as err:
        settings(SECRET=bad)
    assert [e["loc"] for e in err.value.errors()] == [("secret",)]


def test_live_mode_needs_the_wms() -> None:
    with pytest.raises(ValidationError, match="WMS_URL"):
        settings(SECRET=SECRET, LIVE_MODE="true")
    s = settings(SECRET=SECRET, LIVE_MODE="1", WMS_URL="http://127.0.0.1:1", WMS_TOKEN="t",
                 UNSENT_STATUSES="placed,paid")
    assert s.live_mode and s.unsent_statuses == ["placed", "paid"]


def test_public_settings_hold_no_secret() -> None:
    s = settings(SECRET=SECRET, LIVE_MODE="1", WMS_URL="http://127.0.0.1:1", WMS_TOKEN="wms-token-value")
    text = repr(s.public())
    assert SECRET not in text and "wms-token-value" not in text and "shop@127.0.0.1" not in text
    assert s.public()["secret_set"] is True


def test_stocksync_database_is_its_own_setting_or_the_shops() -> None:
    """Two connections: stocksync's own database when given (never shown), else the shop's."""
    own = "postgresql://stocksync_availability:pw-of-stocksync@10.0.0.9:5432/stocksync"
    apart = settings(SECRET=SECRET, STOCKSYNC_DSN=own)
    assert apart.separate_databases and apart.stocksync_conninfo == own
    assert "pw-of-stocksync" not in repr(apart.public()) and "10.0.0.9" not in repr(apart.public())
    for single in (settings(SECRET=SECRET), settings(SECRET=SECRET, STOCKSYNC_DSN=" ")):
        assert not single.separate_databases
        assert single.stocksync_conninfo == BASE["STOCKSYNC_AVAILABILITY_SHOP_DSN"]


def test_a_mysql_family_shop_needs_its_uri_stocksyncs_own_database_and_valid_options() -> None:
    """Magento and PrestaShop keep their stock in MySQL: the shop is a mysql:// URI, stocksync's
    own tables need their PostgreSQL database, the platform's options are checked at start-up."""
    store = "mysql://stocksync:pw@127.0.0.1:3306/magento"
    own = "postgresql://stocksync@127.0.0.1:5432/stocksync"
    with pytest.raises(ValidationError, match="SHOP_DSN as mysql://USER:PASSWORD@HOST:PORT/DATABASE"):
        settings(SECRET=SECRET, SHOP_PLATFORM="magento2", STOCKSYNC_DSN=own)  # the libpq DSN of BASE
    with pytest.raises(ValidationError, match="needs STOCKSYNC_AVAILABILITY_STOCKSYNC_DSN"):
        settings(SECRET=SECRET, SHOP_PLATFORM="prestashop", SHOP_DSN=store)
    with pytest.raises(ValidationError, match="SHOP_OPTIONS for prestashop: id_shop"):
        settings(SECRET=SECRET, SHOP_PLATFORM="prestashop", SHOP_DSN=store, STOCKSYNC_DSN=own,
                 SHOP_OPTIONS='{"id_shop": 0}')
    with pytest.raises(ValidationError, match="SHOP_OPTIONS for magento2: colour"):
        settings(SECRET=SECRET, SHOP_PLATFORM="magento2", SHOP_DSN=store, STOCKSYNC_DSN=own,
                 SHOP_OPTIONS='{"colour": "red"}')
    with pytest.raises(ValidationError, match="JSON object"):
        settings(SECRET=SECRET, SHOP_PLATFORM="magento2", SHOP_DSN=store, STOCKSYNC_DSN=own, SHOP_OPTIONS="source=x")
    magento = settings(SECRET=SECRET, SHOP_PLATFORM="magento2", SHOP_DSN=store, STOCKSYNC_DSN=own,
                       SHOP_OPTIONS='{"source_code": "wms", "table_prefix": "x_"}', SHOP_TABLE_PREFIX="mg_")
    # docs/platforms.md: the magento2 options and their defaults; SHOP_TABLE_PREFIX wins
    assert magento.adapter_options() == {"table_prefix": "mg_", "source_code": "wms", "config_min_qty": 0.0,
                                         "config_backorders": False, "order_statuses": {}, "store_ids": ()}
    assert magento.separate_databases


def test_sku_resolutions_are_reused_until_they_expire_and_the_table_is_bounded() -> None:
    """A clock the test moves by hand: a resolution (mapped SKU, the code itself, unmapped) is reused
    for its lifetime only; the least recently used is dropped beyond the size; 0 s caches nothing."""
    now = [100.0]
    cache = ResolutionCache(10, 2, clock=lambda: now[0])
    cache.put("TEE", "size=l", ("SKU-1", "map"))
    cache.put("MUG", "", ("MUG", "code"))
    assert cache.get("TEE", "size=l") == (True, ("SKU-1", "map"))
    assert cache.get("TEE", "size=m") == (False, None)
    cache.put("CAP", "colour=red", None)  # unmapped options: an answer too; MUG (least recent) goes
    assert cache.get("CAP", "colour=red") == (True, None)
    assert cache.get("MUG", "") == (False, None)
    now[0] += 9
    assert cache.get("TEE", "size=l") == (True, ("SKU-1", "map"))
    now[0] += 1
    assert cache.get("TEE", "size=l") == (False, None)
    off = ResolutionCache(0, 2, clock=lambda: now[0])
    off.put("TEE", "size=l", ("SKU-1", "map"))
    assert off.get("TEE", "size=l") == (False, None)


def test_sku_resolutions_are_bounded_in_characters_not_only_in_entries() -> None:
    """The largest item the protocol accepts makes a 23,000-character options key: 100,000 of them
    would be gigabytes. The cache holds at most `max_chars` characters of codes and keys, dropping
    the least recently used first; an entry larger than that alone is not kept."""
    now = [100.0]
    cache = ResolutionCache(10, 100_000, clock=lambda: now[0], max_chars=100_000)
    big = "!" * 23_000
    cache.put("KEEP", "", ("KEEP", "code"))
    for n in range(50):
        cache.put(f"X{n:07d}", big, None)
        assert cache.get("KEEP", "") == (True, ("KEEP", "code"))  # used all along: never the one dropped
    assert cache.chars <= 100_000 and cache.chars == sum(len(c) + len(k) for c, k in cache._entries)
    assert len(cache._entries) == 1 + 100_000 // 23_008  # KEEP and the 4 newest big ones
    assert cache.get("X0000049", big)[0] and not cache.get("X0000000", big)[0]
    cache.put("HUGE", "!" * 100_001, None)
    assert cache.get("HUGE", "!" * 100_001) == (False, None)
    now[0] += 11  # expired entries leave the count when they are met
    assert cache.get("X0000049", big) == (False, None)
    assert cache.chars == sum(len(c) + len(k) for c, k in cache._entries)
    assert RESOLUTION_CACHE_CHARS == 16 * 1024 * 1024  # the shipped bound: 16 M characters per worker


def test_message_templates_are_checked() -> None:
    with pytest.raises(ValidationError, match="placeholders"):
        settings(SECRET=SECRET, MESSAGE_LIMITED="Only {left} left")


def test_token_bucket_bursts_then_refills_per_client() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.allow("a")[0] for _ in range(4)] == [True, True, True, False]
    allowed, wait = limiter.allow("a")
    assert not allowed and wait == pytest.approx(0.5)
    assert limiter.allow("b")[0]  # another client, its own bucket
    now[0] += 0.5  # one token back
    assert limiter.allow("a") == (True, 0.0)
    assert not limiter.allow("a")[0]
    now[0] += 100  # never more than the burst
    assert [limiter.allow("a")[0] for _ in range(4)] == [True, True, True, False]


def test_token_bucket_table_is_bounded() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=2, clock=lambda: 0.0)
    for client in ("a", "b", "c"):
        assert limiter.allow(client)[0]
    assert limiter.allow("a")[0]  # "a" was dropped (least recent): it starts with a full bucket again
    assert not limiter.allow("c")[0]


def wms_item(**changes: Any) -> dict[str, Any]:
    item = {"sku": "SKU-1", "on_hand": 10, "non_usable": 1, "allocated": 2, "available": 7, "seq": 5,
            "taken_at": "2026-11-23T10:00:00+00:00"}
    item.update(changes)
    return item


def test_wms_item_is_checked() -> None:
    assert parse_item("SKU-1", wms_item()).available == 7
    for bad in (wms_item(sku="SKU-2"), wms_item(available=8), wms_item(seq=-1), wms_item(on_hand=True),
                wms_item(allocated=2.0), wms_item(taken_at="2026-11-23T10:00:00"), wms_item(taken_at=None), [1]):
        with pytest.raises(WmsError) as err:
            parse_item("SKU-1", bad)
        assert err.value.cause == "wms_bad_answer"


@pytest.mark.parametrize("bad", [
    {"on_hand": 2_000_000_003, "available": 2_000_000_000},  # above the validation's max_quantity (1e9)
    {"taken_at": "1970-01-01T00:00:00Z"},                    # an unset time: the epoch
    {"taken_at": "0001-01-01T00:00:00+14:00"},               # before year 1 in UTC
    {"taken_at": "2999-01-01T00:00:00Z"},                    # the future: orders the WMS never saw counted
    {"taken_at": "2026-11-23T10:05:00+00:00"},               # 5 min after now: past the 120 s clock skew
], ids=["above-max-quantity", "epoch", "before-year-1", "year-2999", "past-the-skew"])
def test_a_live_answer_is_judged_as_a_snapshot_is(bad: dict[str, Any]) -> None:
    """Live mode writes the WMS's answer into the shop and answers the storefront with it: a figure
    the nightly's validation refuses, or a taken_at (the watermark of the orders subtracted) that is
    not a plausible time or lies in the future, is a bad answer (the shop's own figure is answered,
    nothing written)."""
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    assert parse_item("SKU-1", wms_item(), now=now).available == 7
    with pytest.raises(WmsError) as err:
        parse_item("SKU-1", wms_item(**bad), max_quantity=1_000_000_000, clock_skew_seconds=120, now=now)
    assert err.value.cause == "wms_bad_answer"


def test_counters_keep_a_failed_period_for_the_next_write() -> None:
    metrics = Metrics(instance="test:1")
    metrics.observe("available", "in_stock", 0.4)
    metrics.observe("unknown", "db_timeout", 250.0)
    first = metrics.take_pending()
    metrics.observe("rejected", "wrong_secret", 0.1, live=None)
    metrics.observe("available", "in_stock", 3.0, live="fallback", live_cause="wms_timeout")
    metrics.put_back(first)  # its write failed
    row = metrics.take_pending().row("test:1", first.started)
    assert row["requests"] == 4
    assert row["answers"].obj == {"available": 2, "unavailable": 0, "unknown": 1, "probe": 0}
    assert row["unknown_causes"].obj == {"db_timeout": 1}
    assert row["rejected"].obj == {"wrong_secret": 1}
    assert row["live"].obj["fallback_causes"] == {"wms_timeout": 1}
    assert sum(row["latency_buckets"]) == 4 and len(row["latency_buckets"]) == len(LATENCY_BOUNDS_MS) + 1
    assert row["latency_buckets"][0] == 2  # 0.4 ms and 0.1 ms are under the first bound (1 ms)
    assert row["latency_max_ms"] == 250.0
    text = metrics.prometheus(live_mode=True, db_down=False)
    assert 'stocksync_availability_requests_total{result="unknown",cause="db_timeout"} 1' in text
    assert 'stocksync_availability_latency_seconds_bucket{le="+Inf"} 4' in text


def test_shed_answers_are_counted_with_the_bound_beside_them() -> None:
    metrics = Metrics(instance="test:1")
    metrics.observe("unknown", "overloaded", 0.05)
    metrics.observe("unknown", "overloaded", 0.04)
    metrics.observe("unknown", "db_timeout", 250.0)
    text = metrics.prometheus(live_mode=False, db_down=False, in_flight=16, max_in_flight=16)
    assert "stocksync_availability_shed_total 2\n" in text
    assert "stocksync_availability_in_flight 16\nstocksync_availability_in_flight_limit 16\n" in text
    assert metrics.take_pending().row("test:1", metrics.total.started)["unknown_causes"].obj == \
        {"db_timeout": 1, "overloaded": 2}


def test_max_in_flight_ships_at_16_and_must_be_positive() -> None:
    assert settings(SECRET=SECRET).max_in_flight == 16
    with pytest.raises(ValidationError):
        settings(SECRET=SECRET, MAX_IN_FLIGHT="0")
