"""Test setup: real services on 127.0.0.1, started by the tests themselves.

- PostgreSQL: a project-managed cluster `.local/pg/test` (port 55433; under pytest-xdist one per
  worker: `.local/pg/test-gw0` on 55435, ...: tests/workers.py) holding two databases, the
  reference shop's (`shop_dsn`: its schema only) and stocksync's own (`stocksync_dsn`: its
  migrations only), which Airflow reaches as two connections (`stocksync_shop`, `stocksync_db`), as
  a deployment does: a statement that joins across them fails. The unit tier keeps both schemas in
  one database (`stocksync_test`, tests/unit/conftest.py), the layout the step functions fall back
  to when given no shop port;
- the WMS service (`devstack/wms_service.py`) as a subprocess on a free port;
- an alert webhook receiver (`devstack/webhook_receiver.py`) on a free port;
- Airflow: a throwaway AIRFLOW_HOME with a migrated SQLite metadata DB, connections
  pointing at the services above, short retry delays.

Nothing of ours is mocked.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

import include.stocksync.airflow  # noqa: F401  (hands Airflow's settings, notifiers and the report writer down)
from devstack.demo_seed import reset_history, reset_shop
from devstack.local_pg import LocalPostgres
from devstack.local_stack import WmsProcess, airflow_env, free_port, migrate_airflow
from devstack.webhook_receiver import make_server
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect, execute_file
from include.stocksync.store.migrations import upgrade
from tests.workers import assign_worker_groups, worker_server

# The session's Airflow home, fixed before any test module is collected: a module that imports the
# plugin (or any Airflow module) at collection binds Airflow's settings to AIRFLOW_HOME then, so it
# must already be the home the `airflow` fixture migrates.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="stocksync-airflow-"))


def pytest_configure(config: pytest.Config) -> None:
    # the parts of the Airflow environment that do not depend on the test services (those, the
    # connections, are read when used)
    static = airflow_env(AIRFLOW_HOME, shop_dsn="postgresql://127.0.0.1/unset", wms_url="http://127.0.0.1",
                         token="unset", webhook_url="http://127.0.0.1")
    os.environ.update({k: v for k, v in static.items() if k == "AIRFLOW_HOME" or k.startswith("AIRFLOW__CORE__")})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # what pytest-xdist runs together (tests/workers.py)
    assign_worker_groups(items, loadgroup=bool(config.getoption("loadgroup", default=False)))


TEST_TOKEN = secrets.token_urlsafe(24)  # random per session: no token of ours is a constant
# one cluster per pytest-xdist worker (tests/workers.py)
_PG_NAME, _PG_PORT = worker_server(os.environ.get("STOCKSYNC_TEST_PG_NAME", "test"),
                                   int(os.environ.get("STOCKSYNC_TEST_PG_PORT", "55433")))
# The test clusters' role verifier takes 16 PBKDF2 iterations, not 4096: a suite run opens some 15,000
# sessions, and each login at 4096 costs the client 2.4 ms of CPU (37 CPU-seconds a run on the
# two-core machine, estimated). The login is still SCRAM; the roles stocksync creates keep PostgreSQL's 4096.
TEST_SCRAM_ITERATIONS = 16
TEST_PG = LocalPostgres(name=_PG_NAME, port=_PG_PORT, database="stocksync_test", scram_iterations=TEST_SCRAM_ITERATIONS)

# Fast retries for tests: a failing run must fail after its retries within seconds.
TEST_SETTINGS_ENV = {
    "STOCKSYNC_RETRY_DELAY_SECONDS": "0.2",
    "STOCKSYNC_MAX_RETRY_DELAY_SECONDS": "1",
    "STOCKSYNC_HTTP_ATTEMPTS": "3",
    "STOCKSYNC_HTTP_BACKOFF_SECONDS": "0.05",
    "STOCKSYNC_HTTP_TIMEOUT_SECONDS": "10",
    "STOCKSYNC_PAGE_SIZE": "25",
    # the test scenarios repair deliberately drifted shops of a few dozen SKUs, far more change
    # than a normal night; the guardrail tests judge plans against the shipped defaults
    "STOCKSYNC_GUARDRAILS__MAX_CHANGED_SHARE": "0.8",
}
os.environ.update(TEST_SETTINGS_ENV)

# The standalone Airflows the tests start (the shared ones, the Celery stack) parse the DAG files once
# at boot and then every 10 minutes instead of Airflow's 30 s: the files never change during a session,
# and each re-parse is a process importing the DAG modules (about 5 CPU-seconds a minute per idle
# standalone on the two-core machine). Deployments keep Airflow's default.
QUIET_DAG_PROCESSOR_ENV = {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600"}


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    was_running = TEST_PG.is_running()
    TEST_PG.start(allow_other_port=True)
    yield TEST_PG
    if not was_running:
        TEST_PG.stop()


@dataclass(frozen=True)
class SplitDatabases:
    """stocksync's own database (its migrations, no shop schema) and the reference shop's (its schema,
    no stocksync schema), apart on the test cluster: a statement that joins across them, or reaches
    one through the other's connection, fails instead of reading a shop (or a sku_map) next door."""

    stocksync: str
    shop: str

    def shop_port(self) -> ShopPort:
        """The reference shop behind the shop port, as the DAGs reach it (`shop_platform: postgres`)."""
        return open_shop(self.shop)


@pytest.fixture(scope="session")
def split_databases(pg: LocalPostgres) -> Iterator[SplitDatabases]:
    """The two databases, created afresh once per session (per xdist worker), dropped after."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    names = SplitDatabases(stocksync=f"stocksync_own{worker}", shop=f"shop_own{worker}")
    for name in (names.stocksync, names.shop):
        pg.drop_database(name)
        pg.create_database(name)
    databases = SplitDatabases(stocksync=pg.dsn(names.stocksync), shop=pg.dsn(names.shop))
    with connect(databases.shop, autocommit=True) as conn:
        execute_file(conn, "shop/create_schema")
    upgrade(databases.stocksync)
    yield databases
    for name in (names.stocksync, names.shop):
        pg.drop_database(name)


@pytest.fixture(scope="session")
def shop_dsn(split_databases: SplitDatabases) -> str:
    """The reference shop's database (no stocksync schema): what `stocksync_shop` connects to."""
    return split_databases.shop


@pytest.fixture(scope="session")
def stocksync_dsn(split_databases: SplitDatabases) -> str:
    """stocksync's own database (no shop schema): what `stocksync_db` (`stocksync_conn_id`) connects to."""
    return split_databases.stocksync


@pytest.fixture
def clean_split(split_databases: SplitDatabases) -> SplitDatabases:
    """Both databases emptied: no shop data, no stocksync history, no SKU mappings or counters."""
    with connect(split_databases.shop) as conn:
        reset_shop(conn)
        conn.commit()
    with connect(split_databases.stocksync) as conn:
        reset_history(conn)
        conn.execute("TRUNCATE stocksync.sku_map, stocksync.availability_stats")
        conn.commit()
    return split_databases


@pytest.fixture
def clean_shop(clean_split: SplitDatabases) -> str:
    """An empty shop and stocksync history (schemas in place); the shop's database."""
    return clean_split.shop


@pytest.fixture(scope="session")
def wms_process() -> Iterator[WmsProcess]:
    process = WmsProcess(free_port(), TEST_TOKEN)
    yield process
    process.stop()


@pytest.fixture
def wms(wms_process: WmsProcess) -> Iterator[WmsProcess]:
    """The WMS service with no faults; faults a test sets are cleared afterwards."""
    wms_process.admin.clear_faults()
    yield wms_process
    wms_process.admin.clear_faults()


class Webhook:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = make_server("127.0.0.1", self.port, None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/received", timeout=5).json()


@pytest.fixture(scope="session")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture(scope="session")
def airflow(split_databases: SplitDatabases, wms_process: WmsProcess, webhook: Webhook) -> dict[str, str]:
    """Airflow configured for the test services (env set before Airflow is imported): the shop and
    stocksync's own database are two connections to two databases."""
    home = AIRFLOW_HOME
    env = airflow_env(home, shop_dsn=split_databases.shop, stocksync_dsn=split_databases.stocksync,
                      wms_url=wms_process.url, token=TEST_TOKEN, webhook_url=webhook.url)
    env.update(TEST_SETTINGS_ENV)
    env["STOCKSYNC_REPORTS_DIR"] = str(home / "reports")
    os.environ.update(env)
    migrate_airflow(env)
    return env


@pytest.fixture(scope="session")
def dagbag(airflow: dict[str, str]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=airflow["AIRFLOW__CORE__DAGS_FOLDER"])


def shop_in_line_with_wms(dsn: str, wms: Any, skus: int, seed: int, drift_share: float) -> str:
    """Reset the WMS to `skus` SKUs and give the (empty) shop the same catalog, its stock
    drifted away from the WMS on about `drift_share` of the SKUs."""
    import random

    from devstack.demo_seed import load_catalog

    wms.admin.reset(skus, seed)
    with connect(dsn) as conn:
        load_catalog(conn, wms.admin.items(), random.Random(seed), drift_share=drift_share)
        conn.commit()
    return dsn


def fresh_dag(dagbag: Any, dag_id: str) -> Any:
    """A newly parsed DAG: `dag.test(run_conf=...)` leaves the conf in the DAG object's params,
    which would leak into the next in-process run (a scheduler parses afresh anyway). Each DAG
    file is named after its DAG: only that file is parsed (the folder's other four files cost as
    much again, and `dag.test()` parses the whole folder itself for its sibling DAGs)."""
    from airflow.dag_processing.dagbag import DagBag

    own_file = Path(dagbag.dag_folder) / f"{dag_id}.py"
    dag = DagBag(dag_folder=str(own_file) if own_file.is_file() else dagbag.dag_folder).get_dag(dag_id)
    assert dag is not None, dag_id
    return dag


def stock_fingerprint(dsn: str) -> list[tuple[Any, ...]]:
    """Every column of every stock row, for byte-for-byte comparisons."""
    with connect(dsn) as conn:
        return conn.execute("SELECT sku, qty, wms_seq, updated_at FROM shop.stock ORDER BY sku").fetchall()


def active_freezes(dsn: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute("SELECT freeze_id, set_by FROM shop.checkout_freezes "
                            "WHERE released_at IS NULL AND expires_at > clock_timestamp()").fetchall()


def try_place_order(dsn: str, lines: list[tuple[str, int]]) -> tuple[int | None, str | None]:
    """Call the shop's checkout; (order id, None) or (None, the refusal message)."""
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT shop.place_order(%s, %s)",
                               ([s for s, _ in lines], [q for _, q in lines])).fetchone()
            return (int(row[0]) if row else None), None
    except psycopg.Error as exc:
        return None, str(exc.diag.message_primary or exc)
