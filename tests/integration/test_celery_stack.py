"""The sync DAGs on the native CeleryExecutor stack (devstack/celery_stack.py): Redis, Airflow's
API server, scheduler, DAG processor and triggerer on a PostgreSQL metadata DB, and two Celery
workers, all real processes on 127.0.0.1, wired to the test shop DB, WMS and webhook.

What only a distributed executor can show:

- the tasks of one run land on different workers (each task instance's `hostname`, read over
  REST, names the worker that ran it), and the run still computes the right stock;
- a worker dying under `load_stock` (SIGKILL of the worker and every process under it, as a
  machine losing power) does not lose the run: the scheduler notices the task stopped
  heartbeating (`[scheduler] task_instance_heartbeat_timeout`, short here), fails that try, and
  the retry runs on the other worker; the shop ends exactly right and the freeze is released by
  the run's teardown before its expiry.

One stack per module (17-31 s to a healthy stack on two cores; the module takes about 100 s),
shared by the tests; the test that kills a worker runs last.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import requests

from devstack.airflow_standalone import wait_for_run
from devstack.celery_stack import CeleryStack
from devstack.demo_seed import seed_demo
from devstack.local_pg import LocalPostgres
from devstack.local_stack import free_port
from include.stocksync import pipeline
from include.stocksync.db import connect
from tests.conftest import TEST_SETTINGS_ENV, TEST_TOKEN, active_freezes
from tests.integration.loop_helpers import shop_stock, truth

pytestmark = pytest.mark.slow

NIGHTLY = "inventory_nightly_sync"
PUSH = "inventory_full_push"
# Seconds without a heartbeat after which the scheduler fails a running task (Airflow's default
# is 300). A healthy task's supervisor heartbeats every 5 s ([workers] min_heartbeat_interval),
# so 20 s leaves a busy two-core machine room before a live task is taken for dead.
HEARTBEAT_TIMEOUT = 20
# A run that lands all its tasks on one worker by chance is run again, at most this many times.
SPREAD_ATTEMPTS = 4


@pytest.fixture(scope="module")
def stack(pg: LocalPostgres, shop_dsn: str, wms_process: Any, webhook: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    base = tmp_path_factory.mktemp("celery-stack")
    celery = CeleryStack(base / "airflow", pg=pg, shop_dsn=shop_dsn, wms_url=wms_process.url, token=TEST_TOKEN,
                         webhook_url=webhook.url, metadata_db="airflow_celery_test", fresh_metadata=True,
                         local_dir=base / "local", reports_dir=base / "reports", availability_port=free_port(),
                         heartbeat_timeout=HEARTBEAT_TIMEOUT, extra_env=dict(TEST_SETTINGS_ENV))
    celery.start()
    try:
        print(f"\nCelery stack healthy after {celery.startup_seconds:.1f}s (logs {celery.logs})")
        deadline = time.monotonic() + 120
        while True:  # the DAG processor registers the DAGs shortly after it starts
            listed = celery.api("GET", "/api/v2/dags", params={"dag_id_pattern": "inventory"})
            if {d["dag_id"] for d in listed.json().get("dags", [])} >= {NIGHTLY, PUSH}:
                break
            assert time.monotonic() < deadline, f"DAGs not registered: {listed.text[:500]}"
            time.sleep(1)
        for dag_id in (NIGHTLY, PUSH):
            response = celery.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            assert response.status_code == 200, response.text
        # unpausing the nightly DAG starts its latest scheduled slot at once: let it finish first
        while True:
            due = celery.api("GET", f"/api/v2/dags/{NIGHTLY}").json()["next_dagrun_run_after"]
            if due is None or datetime.fromisoformat(due) > datetime.now(UTC):
                break
            assert time.monotonic() < deadline, f"the scheduler did not create the due run of {NIGHTLY}"
            time.sleep(1)
        settle(celery, NIGHTLY)
        yield celery
    finally:
        celery.stop()


def trigger(stack: CeleryStack, dag_id: str, conf: dict[str, Any]) -> str:
    response = stack.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def settle(stack: CeleryStack, dag_id: str) -> None:
    """Wait until no run of `dag_id` is queued or running (e.g. the slot unpausing started)."""
    for run in stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"]:
        if run["state"] not in ("success", "failed"):
            wait_for_run(stack, dag_id, run["dag_run_id"], timeout=240)


def task_instances(stack: CeleryStack, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    response = stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    assert response.status_code == 200, response.text
    return {ti["task_id"]: ti for ti in response.json()["task_instances"]}


def worker_of(hostname: str | None) -> str:
    """`worker-a@<fqdn>` -> `worker-a` (devstack/worker_hostname.py)."""
    return (hostname or "").split("@", 1)[0]


def run_spread(stack: CeleryStack, dag_id: str, conf: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]], int]:
    """Run `dag_id` until one run's tasks used both workers (the broker hands each queued task to
    whichever worker asks first, so one run may by chance use a single worker); returns that
    run's id, its task instances and how many runs it took. Every run must succeed."""
    for attempt in range(1, SPREAD_ATTEMPTS + 1):
        run_id = trigger(stack, dag_id, conf)
        assert wait_for_run(stack, dag_id, run_id, timeout=240)["state"] == "success", stack.log_tail("scheduler")
        tis = task_instances(stack, dag_id, run_id)
        # every task ran on one of our Celery workers (never in the scheduler, never elsewhere)
        assert {worker_of(ti["hostname"]) for ti in tis.values()} <= set(stack.workers), tis
        if {worker_of(ti["hostname"]) for ti in tis.values()} == set(stack.workers):
            return run_id, tis, attempt
    pytest.fail(f"{SPREAD_ATTEMPTS} runs of {dag_id} each ran on a single worker")


def ask_availability(stack: CeleryStack, sku: str) -> int:
    assert stack.availability is not None
    response = requests.post(stack.availability.endpoint, data={".code": sku, ".quantity": "1"},
                             headers={"X-Inventory-Secret": stack.availability.secret or ""}, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Inventory-Available"])


def test_nightly_and_push_spread_over_both_workers(stack: CeleryStack, clean_shop: str, wms: Any) -> None:
    settle(stack, NIGHTLY)
    seed_demo(clean_shop, wms.admin, skus=40, seed=3, orders=30)

    nightly_id, nightly_tis, nightly_runs = run_spread(stack, NIGHTLY, {})
    assert pipeline.get_run(clean_shop, nightly_id)["status"] == "applied"
    assert shop_stock(clean_shop) == truth(clean_shop, wms)
    assert active_freezes(clean_shop) == []

    # the WMS moves; a full push over REST repairs it, again on both workers
    moved = wms.admin.items()[:5]
    wms.admin.set_items([{"sku": item["sku"], "on_hand": item["on_hand"] + 7} for item in moved])
    push_id, push_tis, push_runs = run_spread(stack, PUSH, {"dry_run": False, "freeze_mode": "apply"})
    record = pipeline.get_run(clean_shop, push_id)
    assert record["status"] == "applied" and record["triggered_by"] == stack.username
    assert shop_stock(clean_shop) == truth(clean_shop, wms)
    assert active_freezes(clean_shop) == []
    # the availability service started with the stack answers the shop's number
    sku = moved[0]["sku"]
    assert ask_availability(stack, sku) == shop_stock(clean_shop)[sku]
    print(f"\nnightly {nightly_id}: {len(nightly_tis)} tasks on "
          f"{sorted({worker_of(t['hostname']) for t in nightly_tis.values()})} ({nightly_runs} run(s)); "
          f"push {push_id}: ({push_runs} run(s)); per task: "
          + ", ".join(f"{task}={worker_of(ti['hostname'])}" for task, ti in sorted(push_tis.items())))


def load_waiting_on_lock(dsn: str, timeout: float = 120) -> int:
    """The pid of the backend whose `LOCK TABLE ... stock` waits on our lock (the load's apply)."""
    deadline = time.monotonic() + timeout
    with connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND query ILIKE '%%LOCK TABLE %%stock IN EXCLUSIVE MODE%%'").fetchone()
            if row:
                return int(row[0])
            if time.monotonic() > deadline:
                waiting = conn.execute("SELECT wait_event_type, wait_event, state, left(query, 200) "
                                       "FROM pg_stat_activity WHERE datname = current_database()").fetchall()
                pytest.fail(f"load_stock never reached its stock lock; sessions: {waiting}")
            time.sleep(0.2)


def test_worker_killed_mid_load_the_retry_finishes_on_the_other(stack: CeleryStack, clean_shop: str,
                                                                wms: Any) -> None:
    settle(stack, NIGHTLY)
    seed_demo(clean_shop, wms.admin, skus=40, seed=5, orders=30)
    expected = truth(clean_shop, wms)
    assert shop_stock(clean_shop) != expected  # the run has something to repair

    # Hold a lock on shop.stock that conflicts with the apply's, so load_stock is surely mid-load
    # (its transaction open, waiting) when its worker dies.
    holder = psycopg.connect(clean_shop)
    try:
        holder.execute("LOCK TABLE shop.stock IN SHARE MODE")
        run_id = trigger(stack, NIGHTLY, {"freeze_mode": "full"})
        waiting_pid = load_waiting_on_lock(clean_shop)  # no other run is active (settled above)
        load = task_instances(stack, NIGHTLY, run_id)["load_stock"]
        assert load["state"] == "running" and load["try_number"] == 1, load
        victim = worker_of(load["hostname"])
        survivor = next(w for w in stack.workers if w != victim)
        killed = stack.kill_worker(victim)
    finally:
        holder.rollback()  # the dead worker's backend gets the lock, finds its client gone, rolls back
        holder.close()

    run = wait_for_run(stack, NIGHTLY, run_id, timeout=240)
    assert run["state"] == "success", stack.log_tail("scheduler")
    tis = task_instances(stack, NIGHTLY, run_id)
    retried = tis["load_stock"]
    assert retried["try_number"] == 2 and worker_of(retried["hostname"]) == survivor, retried
    tries = stack.api("GET", f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances/load_stock/tries").json()
    first = next(t for t in tries["task_instances"] if t["try_number"] == 1)
    assert worker_of(first["hostname"]) == victim and first["state"] == "failed", first
    # the killed worker's database session is gone, it applied nothing: the run's own apply did
    with connect(clean_shop, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (waiting_pid,)).fetchone() == (0,)
        freeze = conn.execute("SELECT set_at, released_at, expires_at FROM shop.checkout_freezes "
                              "WHERE set_by = %s", (run_id,)).fetchall()

    assert shop_stock(clean_shop) == expected  # WMS figures minus the orders it had not counted
    assert active_freezes(clean_shop) == []
    record = pipeline.get_run(clean_shop, run_id)
    assert record["status"] == "applied" and record["changed"] > 0
    # one freeze, released by the run's teardown before its expiry (the dead man's switch was
    # not what reopened checkout)
    assert len(freeze) == 1
    set_at, released_at, expires_at = freeze[0]
    assert released_at is not None and released_at < expires_at, freeze
    window = (released_at - set_at).total_seconds()
    assert abs(window - record["freeze_seconds"]) < 1
    kill_to_release = released_at.timestamp() - killed.killed_at
    print(f"\nkilled {victim} (pids {killed.pids}) mid-load; load_stock retried on {survivor}; freeze window "
          f"{window:.1f}s (bound: expiry after {(expires_at - set_at).total_seconds():.0f}s), released "
          f"{kill_to_release:.1f}s after the kill (heartbeat timeout {HEARTBEAT_TIMEOUT}s); run finished "
          f"{datetime.fromisoformat(run['end_date']).isoformat()}")
