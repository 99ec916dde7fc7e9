"""One `airflow standalone` (API server, UI, scheduler, DAG processor, triggerer; LocalExecutor)
shared by the modules that drive Airflow over HTTP and in Chromium: test_airflow_ui.py,
test_ops_pages.py and test_ops_rest.py. Booting it costs a minute on a busy two-core machine,
so it boots once per session; those modules run one after the other (last in one process, on one
worker under pytest-xdist: tests/workers.py), and the standalone is stopped after the last of them
(`pytest_runtest_teardown`), so an idle standalone never loads the machine while the rest runs.

What the modules need of it, set once here: the session's reports folder (runs made in this
process with `dag.test()` are listed and served by its plugin), any run id without `/` (the
hostile run id of test_airflow_ui.py) and times shown in Europe/Berlin (test_ops_pages.py).
Each module leaves no run of its own queued or running behind (test_ops_rest.py pauses the
nightly again). The FAB-auth stack (test_airflow_fab_auth.py) is another auth manager and keeps
its own Airflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.airflow_standalone import AirflowStandalone
from devstack.local_stack import free_port
from tests.conftest import TEST_SETTINGS_ENV, TEST_TOKEN
from tests.workers import SHARED_AIRFLOW, longest_first, worker_number

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
        extra_env={**TEST_SETTINGS_ENV, "STOCKSYNC_REPORTS_DIR": airflow["STOCKSYNC_REPORTS_DIR"],
                   # a deployment may allow any run id; the hostile run id of test_airflow_ui.py needs it
                   "AIRFLOW__SCHEDULER__ALLOWED_RUN_ID_PATTERN": "^[^/]+$",
                   "AIRFLOW__API__DEFAULT_UI_TIMEZONE": UI_ZONE})
    standalone.launch()
    _STANDALONES.append(standalone)
    try:
        yield standalone
    finally:
        _STANDALONES.remove(standalone)
        standalone.stop(timeout=5)


# the session's standalone while it is set up (stopped after its last module: below)
_STANDALONES: list[AirflowStandalone] = []


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared standalone once the last test on it is done (its module fixtures are torn down
    by then): idle, its scheduler and DAG processor would go on taking CPU from the tests still to
    run (under pytest-xdist its modules may run first on their worker). A module on it that comes
    later launches it again (each module's fixture calls `launch()`)."""
    if SHARED_AIRFLOW in getattr(item, "fixturenames", ()) and (
            nextitem is None or SHARED_AIRFLOW not in getattr(nextitem, "fixturenames", ())):
        for standalone in _STANDALONES:
            standalone.stop(timeout=5)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The modules on the shared standalone run last, together (each module's tests stay in order).
    Under pytest-xdist they run on one worker, and the longest modules are started first instead
    (tests/workers.py)."""
    if worker_number() is not None:
        longest_first(items)
        return
    shared = {getattr(item, "module", None) for item in items if SHARED_AIRFLOW in getattr(item, "fixturenames", ())}
    shared.discard(None)
    items.sort(key=lambda item: getattr(item, "module", None) in shared)
