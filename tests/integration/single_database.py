"""The single-database layout (the reference shop and stocksync's schema in one database), for the
integration modules whose own reads and step calls still treat the shop's database as stocksync's:
assigning these fixtures to module globals of such a module gives its tests one database
(`stocksync_test`, the unit tier's) and points Airflow's `stocksync_shop` connection at it with `stocksync_conn_id`
unset. Every other module runs on the two databases of tests/conftest.py; a module moves there by
dropping this import and reading stocksync's tables through `stocksync_dsn`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.demo_seed import reset_shop
from devstack.local_pg import LocalPostgres
from devstack.local_stack import STOCKSYNC_CONN_ID, postgres_connection_json
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


@pytest.fixture(autouse=True)
def single_database_airflow(airflow: dict[str, str], shop_dsn: str,
                            monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Airflow's shop connection on the one database, stocksync's schema found there too."""
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_SHOP", postgres_connection_json(shop_dsn))
    monkeypatch.delenv("STOCKSYNC_STOCKSYNC_CONN_ID", raising=False)
    monkeypatch.delenv(f"AIRFLOW_CONN_{STOCKSYNC_CONN_ID.upper()}", raising=False)
    yield
