"""Two `airflow standalone`s (API server, UI, scheduler, DAG processor, triggerer; LocalExecutor),
each shared by the modules that drive Airflow over HTTP and in Chromium:
- `shared_airflow`, Airflow's simple auth manager: test_airflow_ui.py, test_ops_pages.py,
  test_ops_rest.py and test_local_secrets.py's look at a running standalone from the outside;
- `shared_fab_airflow`, the FAB auth manager with three personal accounts (erin admin, alice
  ops, bob viewer): test_airflow_fab_auth.py and test_incidents.py.
Booting one costs half a minute to a minute on a busy two-core machine, so each boots once per
session; the modules on one run one after the other (last in one process, on one worker under
pytest-xdist: tests/workers.py), and each standalone is stopped after the last test on it
(`pytest_runtest_teardown`), so an idle standalone never loads the machine while the rest runs.

What the modules need of it, set once here: the session's reports folder (runs made in this
process with `dag.test()` are listed and served by its plugin), any run id without `/` (the
hostile run id of test_airflow_ui.py) and times shown in Europe/Berlin (test_ops_pages.py).
Each module leaves no run of its own queued or running behind (test_ops_rest.py pauses the
nightly again).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.airflow_standalone import AirflowStandalone
from devstack.local_stack import free_port
from tests.conftest import QUIET_DAG_PROCESSOR_ENV, TEST_SETTINGS_ENV, TEST_TOKEN
from tests.integration.browser import close_browser
from tests.workers import SHARED_AIRFLOW, SHARED_FAB_AIRFLOW, longest_first, shared_modules, worker_number

# Europe/Berlin: not UTC, and a zone with daylight saving (what the ops pages are checked in)
UI_ZONE = "Europe/Berlin"


@pytest.fixture(scope="session")
def shared_airflow(split_databases: Any, wms_process: Any, webhook: Any, airflow: dict[str, str],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStandalone]:
    """The session's standalone Airflow, launched (not yet ready: each module makes its runs while
    it boots, then calls `launch().wait_ready(...)`: a module whose wait timed out stopped it, and
    the next module starts it again rather than failing on that module's account)."""
    standalone = AirflowStandalone(
        tmp_path_factory.mktemp("airflow-standalone"), shop_dsn=split_databases.shop,
        stocksync_dsn=split_databases.stocksync, wms_url=wms_process.url,
        token=TEST_TOKEN, webhook_url=webhook.url, port=free_port(),
        extra_env={**TEST_SETTINGS_ENV, **QUIET_DAG_PROCESSOR_ENV,
                   "STOCKSYNC_REPORTS_DIR": airflow["STOCKSYNC_REPORTS_DIR"],
                   # a deployment may allow any run id; the hostile run id of test_airflow_ui.py needs it
                   "AIRFLOW__SCHEDULER__ALLOWED_RUN_ID_PATTERN": "^[^/]+$",
                   "AIRFLOW__API__DEFAULT_UI_TIMEZONE": UI_ZONE})
    yield from _launched(SHARED_AIRFLOW, standalone)


@pytest.fixture(scope="session")
def shared_fab_airflow(split_databases: Any, wms_process: Any, webhook: Any, airflow: dict[str, str],
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStandalone]:
    """The session's standalone Airflow with the FAB auth manager (what `scripts/stack.sh --auth fab`
    starts) and three accounts, erin (admin), alice (ops) and bob (viewer), launched; each module
    calls `launch().wait_ready(...)` as for `shared_airflow`."""
    home = tmp_path_factory.mktemp("airflow-fab")
    standalone = AirflowStandalone(
        home, shop_dsn=split_databases.shop, stocksync_dsn=split_databases.stocksync,
        wms_url=wms_process.url, token=TEST_TOKEN, webhook_url=webhook.url, port=free_port(), auth="fab",
        users={"erin": "admin", "alice": "ops", "bob": "viewer"},
        extra_env={**TEST_SETTINGS_ENV, **QUIET_DAG_PROCESSOR_ENV, "STOCKSYNC_REPORTS_DIR": str(home / "reports")})
    yield from _launched(SHARED_FAB_AIRFLOW, standalone)


def _launched(name: str, standalone: AirflowStandalone) -> Iterator[AirflowStandalone]:
    """A shared standalone's fixture body: launched, known by `name` to the teardown hook below while
    the session holds it, stopped at the end."""
    standalone.launch()
    _STANDALONES[name] = standalone
    try:
        yield standalone
    finally:
        del _STANDALONES[name]
        standalone.stop(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def module_browser() -> Iterator[None]:
    """The module's Chromium (tests/integration/browser.py), if a test started it, stops with the module."""
    yield
    close_browser()


# the session's shared standalones while they are set up, by fixture name (each stopped after its
# last test: below)
_STANDALONES: dict[str, AirflowStandalone] = {}
# each module with a test on a shared standalone -> its fixture name (set at collection)
_SHARED_MODULES: dict[Any, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop a shared standalone once the last test on it is done (its module fixtures are torn down
    by then): idle, its scheduler and DAG processor would go on taking CPU from the tests still to
    run (under pytest-xdist its modules may run first on their worker). A module on it that comes
    later launches it again (each module's fixture calls `launch()`)."""
    name = _SHARED_MODULES.get(getattr(item, "module", None))
    following = None if nextitem is None else _SHARED_MODULES.get(getattr(nextitem, "module", None))
    if name is not None and name in _STANDALONES and following != name:
        _STANDALONES[name].stop(timeout=5)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules on each shared standalone run last, together (each module's tests stay in order).
    Under pytest-xdist they run on one worker, and the longest modules are started first instead
    (tests/workers.py)."""
    shared = shared_modules(items)
    _SHARED_MODULES.update(shared)
    if worker_number() is not None:
        longest_first(items)
        return
    order = {None: 0, SHARED_FAB_AIRFLOW: 1, SHARED_AIRFLOW: 2}
    items.sort(key=lambda item: order[shared.get(getattr(item, "module", None))])
