"""The test servers of one pytest process: under pytest-xdist (`scripts/test.sh` runs the suite on
several workers) each worker starts its own PostgreSQL and MariaDB clusters, named and numbered
after the worker, so no two workers share a database, a data directory or a port.

Without xdist (a single file run by hand) the configured name and port are used as they are.
"""

from __future__ import annotations

import os
from typing import Any

# Each worker takes this many ports after the configured one: the test cluster and the
# second cluster at its port + 1 (tests/integration/test_shop_elsewhere.py).
PORTS_PER_WORKER = 2


def worker_number() -> int | None:
    """pytest-xdist's worker number (`gw0` is 0), None when the tests run in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return None
    number = worker.removeprefix("gw")
    if not number.isdigit():
        raise RuntimeError(f"PYTEST_XDIST_WORKER={worker!r}: expected gw<number> (pytest-xdist's worker ids)")
    return int(number)


def worker_server(name: str, port: int) -> tuple[str, int]:
    """The server name and port this process uses for a test server configured as (name, port):
    worker N gets `<name>-gwN` on port + 2(N+1), so the configured ports of a developer's own
    range stay apart for 4 workers (e.g. 55740 -> 55742..55749)."""
    number = worker_number()
    if number is None:
        return name, port
    return f"{name}-gw{number}", port + PORTS_PER_WORKER * (number + 1)


# The session fixtures of the standalone Airflows several modules share (tests/integration/conftest.py):
# one with Airflow's simple auth manager, one with the FAB auth manager and its per-person accounts
SHARED_AIRFLOW = "shared_airflow"
SHARED_FAB_AIRFLOW = "shared_fab_airflow"
SHARED_STANDALONES = (SHARED_AIRFLOW, SHARED_FAB_AIRFLOW)


def shared_standalone(item: Any) -> str | None:
    """The shared standalone fixture `item` uses, None if it uses neither."""
    names = getattr(item, "fixturenames", ())
    return next((name for name in SHARED_STANDALONES if name in names), None)


def shared_modules(items: list[Any]) -> dict[Any, str]:
    """Each module with a test on a shared standalone -> that standalone's fixture name: the whole
    module goes with it."""
    return {item.module: name for item in items
            if (name := shared_standalone(item)) is not None and getattr(item, "module", None) is not None}


def assign_worker_groups(items: list[Any], loadgroup: bool) -> None:
    """Under `--dist loadgroup` a test without an `xdist_group` mark goes to any worker. The modules
    on a shared standalone Airflow must run on one worker (one boot, their runs one after the
    other), and a module whose tests share a module-scoped fixture (a service stack, a server, a
    seeded world) would set it up again on every worker its tests land on: each runs whole on one
    worker. So does a module marked `pytest.mark.xdist_group` (its tests share something outside
    pytest's fixtures, e.g. the checkout's own cluster and database: two of them at once on two
    workers would drop each other's database). `loadgroup`: this is an xdist worker under
    `--dist loadgroup`."""
    import pytest

    shared = shared_modules(items)
    for item in items:
        if getattr(item, "module", None) in shared:
            group = shared[item.module]
        else:
            info = getattr(item, "_fixtureinfo", None)
            scopes = {d.scope for defs in (info.name2fixturedefs.values() if info else ()) for d in defs}
            marked = item.get_closest_marker("xdist_group") is not None
            if not marked and "module" not in scopes and "class" not in scopes:
                continue
            group = item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
        if loadgroup:
            _name_group(item, group)


def _name_group(item: Any, group: str) -> None:
    """What pytest-xdist 3.8 means to do with an `xdist_group` mark: the scheduler groups the tests
    whose node id ends in `@<group>`. It sets `item._nodeid`, which pytest 9.2 no longer reads (the
    node id is `item._id`, a NodeId), so its groups never form: the id is set here the way pytest
    keeps it. Remove once pytest-xdist sets the id pytest reads."""
    from _pytest.nodeid import NodeId

    if not item.nodeid.endswith(f"@{group}"):
        item._id = NodeId.parse(f"{item.nodeid}@{group}")


# Started first under pytest-xdist, longest first (their share of `--durations` on the two-core
# machine: the four modules on the shared standalone ~240 s together, the Celery stack and the
# crash tests ~100-130 s each, the FAB standalone's two modules ~70 s, the trading day, the trust
# boundary and the benchmark ~45-70 s): a long module picked up last would keep one worker busy
# while the others have nothing left to do.
LONGEST_FIRST = (
    SHARED_AIRFLOW,
    "tests/integration/test_celery_stack.py",
    "tests/integration/test_operations_faults.py",
    "tests/integration/test_trading_day.py",
    SHARED_FAB_AIRFLOW,
    "tests/integration/test_trust_boundary.py",
    "tests/integration/test_benchmark_hygiene.py",
    "tests/integration/test_alert_delivery.py",
)


def longest_first(items: list[Any]) -> None:
    """Sort `items` (in place, otherwise as collected) so the tests of `LONGEST_FIRST` come first, in
    that order: with `--dist loadgroup --no-loadscope-reorder` the workers take them up first."""
    shared = shared_modules(items)

    def rank(item: Any) -> int:
        module = getattr(item, "module", None)
        group = shared[module] if module in shared else item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
