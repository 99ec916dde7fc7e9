"""The unit tier's database: the reference shop and stocksync's schema in one database
(`stocksync_test` on the test cluster), the single-database layout the step functions fall back
to when they are given no shop port (`open_shop(dsn)`). The integration tests and every DAG run
use two databases (tests/conftest.py: `shop_dsn`, `stocksync_dsn`)."""

from __future__ import annotations

import pytest

from devstack.demo_seed import reset_shop
from devstack.local_pg import LocalPostgres
from include.stocksync.store.db import connect
from include.stocksync.sync.pipeline import apply_schema


@pytest.fixture(scope="session")
def shop_dsn(pg: LocalPostgres) -> str:
    """One database holding the reference shop and stocksync's schema."""
    dsn = pg.dsn()
    apply_schema(dsn)
    return dsn


@pytest.fixture
def clean_shop(shop_dsn: str) -> str:
    """An empty shop and stocksync history (schema in place)."""
    with connect(shop_dsn) as conn:
        reset_shop(conn)
        conn.commit()
    return shop_dsn
