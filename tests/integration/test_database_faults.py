"""The databases failing at precise points of a run driven through the pipeline's steps (no
Airflow; a retry is the same step called again, as Airflow's task retry would call it): stocksync's
own database refusing connections when the teardown runs, a setup retried after its record of the
budget was lost, another session's ACCESS EXCLUSIVE lock on the shop's stock while a run reads it.
The shop and stocksync's own tables are two databases on the test cluster (`clean_split`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devstack.demo_seed import seed_demo
from include.stocksync.config.settings import load_settings
from include.stocksync.domain.errors import is_permanent
from include.stocksync.shop.port import ShopUnavailable
from include.stocksync.shop.postgres.adapter import PostgresShop
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import active_freezes
from tests.integration.loop_helpers import wms_session

pytestmark = pytest.mark.slow

DAG = "inventory_nightly_sync"


@pytest.fixture
def seeded(clean_split: Any, wms: Any) -> Any:
    seed_demo(clean_split.shop, wms.admin, skus=40, seed=12, orders=20)
    return clean_split


@contextmanager
def refusing(dsn: str) -> Iterator[None]:
    """The database of `dsn` refuses every new connection and its sessions are ended."""
    name = conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                      "AND pid <> pg_backend_pid()", (name,))
    try:
        yield
    finally:
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def frozen_run(db: Any, wms: Any, run_id: str) -> None:
    """A full-mode nightly frozen and extracted (checkout closed by `run_id`)."""
    shop = db.shop_port()
    pipeline.freeze_checkout(db.stocksync, run_id=run_id, dag_id=DAG, settings=load_settings(), shop=shop)
    pipeline.extract(db.stocksync, run_id=run_id, session=wms_session(), base_url=wms.url, shop=shop)


def test_the_teardown_opens_checkout_while_stocksyncs_database_refuses(seeded: Any, wms: Any) -> None:
    """The shop is up, stocksync's own database refuses connections: the teardown releases this
    run's freeze in the shop first and then fails (transient), so checkout does not wait for
    stocksync's database (it stayed closed until the database came back, or the freeze expired).
    The retried teardown closes the run's record."""
    frozen_run(seeded, wms, "db-down-teardown")
    assert [f[1] for f in active_freezes(seeded.shop)] == ["db-down-teardown"]
    with refusing(seeded.stocksync), pytest.raises(psycopg.OperationalError) as failed:
        pipeline.release_freeze(seeded.stocksync, run_id="db-down-teardown", dag_id=DAG, shop=seeded.shop_port())
    assert not is_permanent(failed.value)
    assert active_freezes(seeded.shop) == []
    done = pipeline.release_freeze(seeded.stocksync, run_id="db-down-teardown", dag_id=DAG, shop=seeded.shop_port())
    assert done["status"] is not None and pipeline.get_run(seeded.stocksync, "db-down-teardown")["closed_at"]


def test_a_retried_setup_keeps_the_budget_of_the_freeze_it_set(seeded: Any, wms: Any) -> None:
    """The setup froze checkout and its record of the run's budget was lost (stocksync's database
    dropped it after the shop committed the freeze); Airflow retries the setup: it finds its own
    freeze and takes the freeze's expiry as the budget again (it went on without one, and could
    apply after its freeze had expired, with checkout open)."""
    frozen_run(seeded, wms, "budget-lost")
    with connect(seeded.stocksync) as conn:
        budget = conn.execute("SELECT budget_until FROM stocksync.sync_runs WHERE run_id = 'budget-lost'").fetchone()[0]
        conn.execute("UPDATE stocksync.sync_runs SET budget_until = NULL WHERE run_id = 'budget-lost'")
        conn.commit()
    again = pipeline.freeze_checkout(seeded.stocksync, run_id="budget-lost", dag_id=DAG, settings=load_settings(),
                                     shop=seeded.shop_port())
    assert again["reason"] == "already frozen by this run"
    assert pipeline.get_run(seeded.stocksync, "budget-lost")["budget_until"] == budget
    pipeline.release_freeze(seeded.stocksync, run_id="budget-lost", dag_id=DAG, shop=seeded.shop_port())


def test_a_read_of_the_shop_behind_another_sessions_lock_ends_at_the_lock_timeout(seeded: Any) -> None:
    """Another session holds ACCESS EXCLUSIVE on the shop's stock (a maintenance ALTER, TRUNCATE,
    VACUUM FULL): a run's read of the stock gives up at the lock timeout, transient, while the lock
    is still held (it waited for as long as the other session liked, checkout closed meanwhile)."""
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with psycopg.connect(seeded.shop) as conn:
            conn.execute("LOCK TABLE shop.stock IN ACCESS EXCLUSIVE MODE")
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    shop = PostgresShop(seeded.shop, lock_timeout_seconds=1)
    try:
        with pytest.raises(ShopUnavailable) as gave_up:
            shop.stream_stock(NullSink())
        still_held = not release.is_set() and holder.is_alive()
    finally:
        release.set()
        holder.join(30)
    assert still_held and not is_permanent(gave_up.value) and "lock" in str(gave_up.value).lower()
    # the shipped bound: the deployment's lock_timeout_seconds
    assert PostgresShop(seeded.shop).lock_timeout_seconds == load_settings().lock_timeout_seconds


class NullSink:
    def write_row(self, row: Any) -> None:
        pass

    def write(self, buffer: Any) -> None:
        pass
