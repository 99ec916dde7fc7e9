"""The reference PostgreSQL adapter's connection: kept between calls, never reused when it failed,
replaced when the server ended it while idle, and never shared by two transactions at once. Seen
from the server (pg_stat_activity), on the test cluster."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from include.stocksync.shop.postgres.adapter import PostgresShop


def adapter_backends(dsn: str) -> list[int]:
    """The server processes of the adapter's sessions (`application_name` stocksync) on the shop's
    database, read on a connection of our own (another application name)."""
    with psycopg.connect(dsn, application_name="observer", autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'stocksync' "
                            "AND datname = current_database() ORDER BY pid").fetchall()
    return [int(row[0]) for row in rows]


def one_product(dsn: str) -> None:
    """SKU-1 on sale with 5 in stock at WMS sequence 1."""
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO shop.products (sku, name, enabled) VALUES ('SKU-1', 'one', true)")
        conn.execute("INSERT INTO shop.stock (sku, qty, wms_seq) VALUES ('SKU-1', 5, 1)")


@pytest.fixture
def shop(clean_shop: str) -> Iterator[PostgresShop]:
    port = PostgresShop(clean_shop)
    yield port
    port.close()


def test_calls_share_one_session(shop: PostgresShop, clean_shop: str) -> None:
    shop.active_freezes()
    first = adapter_backends(clean_shop)
    assert len(first) == 1
    shop.freeze_seconds(set_by="nobody")
    shop.active_freezes(set_by="nobody")
    assert adapter_backends(clean_shop) == first
    shop.close()
    assert adapter_backends(clean_shop) == []


def test_a_session_idle_past_the_keep_bound_is_not_reused(shop: PostgresShop, clean_shop: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection idle longer than KEEP_IDLE_SECONDS (a firewall may have dropped its flow) is
    closed and the call opens a new one (the bound set to 0 here; 30 s shipped)."""
    from include.stocksync.shop.postgres import adapter

    assert adapter.KEEP_IDLE_SECONDS == 30.0
    shop.active_freezes()
    [first] = adapter_backends(clean_shop)
    monkeypatch.setattr(adapter, "KEEP_IDLE_SECONDS", 0.0)
    shop.active_freezes()
    [second] = adapter_backends(clean_shop)
    assert second != first


def test_a_session_the_server_ended_is_replaced_without_an_error(shop: PostgresShop, clean_shop: str) -> None:
    shop.active_freezes()
    [gone] = adapter_backends(clean_shop)
    with psycopg.connect(clean_shop, application_name="observer", autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (gone,)).fetchone() == (True,)
    frozen = shop.set_freeze(set_by="run-a", reason="test", message="back soon", placeholder="{end}",
                             ttl_seconds=60)
    assert [f.freeze_id for f in shop.active_freezes(set_by="run-a")] == [frozen.freeze_id]
    [now] = adapter_backends(clean_shop)
    assert now != gone


def test_a_failed_transaction_is_rolled_back_and_its_session_dropped(shop: PostgresShop, clean_shop: str) -> None:
    one_product(clean_shop)
    with pytest.raises(RuntimeError, match="stop here"):
        with shop.live_session("SKU-1", lock_timeout_seconds=5) as live:
            assert live.write(9, 2) is not None
            failed = adapter_backends(clean_shop)
            raise RuntimeError("stop here")
    assert adapter_backends(clean_shop) == []
    assert shop.sellable("SKU-1") is not None
    assert shop.sellable("SKU-1").qty == 5  # type: ignore[union-attr]
    assert adapter_backends(clean_shop) != failed


def test_two_threads_never_share_a_transaction(shop: PostgresShop, clean_shop: str) -> None:
    """A call made while another thread's transaction holds the kept connection gets its own: the
    row lock of one live session makes the other wait instead of both writing in one transaction."""
    one_product(clean_shop)
    holding = threading.Event()
    release = threading.Event()
    seen: dict[str, object] = {}

    def hold() -> None:
        with shop.live_session("SKU-1", lock_timeout_seconds=5) as live:
            seen["first"] = live.write(6, 2)
            holding.set()
            release.wait(10)

    first = threading.Thread(target=hold)
    first.start()
    assert holding.wait(10)
    # the second session waits for the row lock: in the same transaction it would not
    with pytest.raises(Exception, match="lock was not granted"):
        with shop.live_session("SKU-1", lock_timeout_seconds=0.5):
            pass
    assert len(adapter_backends(clean_shop)) == 1  # the holder's; the failed one was closed
    release.set()
    first.join(10)
    with shop.live_session("SKU-1", lock_timeout_seconds=5) as live:
        assert live.current is not None and (live.current.qty, live.current.wms_seq) == (6, 2)


def test_the_shipped_lock_bound_is_the_shipped_configs() -> None:
    """A process without a readable stocksync config (the availability service) bounds its shop
    transactions' lock waits by the shipped lock_timeout_seconds: the same figure as the file's."""
    from include.stocksync.config.settings import load_settings
    from include.stocksync.shop.postgres.adapter import SHIPPED_LOCK_TIMEOUT_SECONDS

    assert SHIPPED_LOCK_TIMEOUT_SECONDS == load_settings(environ={}).lock_timeout_seconds
