"""The sync DAGs on the native CeleryExecutor stack (devstack/celery_stack.py): Redis, Airflow's
API server, scheduler, DAG processor and triggerer on a PostgreSQL metadata DB, and two Celery
workers, all real processes on 127.0.0.1, wired to the test shop DB, WMS and webhook.

What only a distributed executor can show:

- the tasks of one run land on different workers (each task instance's `hostname`, read over
  REST, names the worker that ran it), and the run still computes the right stock;
- a worker dying under `load_stock` while it holds the stock lock (SIGKILL of the worker and
  every process under it, as a machine losing power) loses neither the stack nor the night: the
  stack's supervisor starts the dead worker again and leaves the rest running; the scheduler fails
  the lost try after `[scheduler] task_instance_heartbeat_timeout`, the retry runs on a live
  worker, the shop ends exactly right, the run's teardown releases the freeze within the stated
  bound (docs/operations.md, "A lost worker") and the lost try is alerted (`task_lost`).

The crash runs at the shipped timing scaled down by one factor (tests/fault_timing.py: Airflow's
lost-task detection, its heartbeat, stocksync's retry delays and liveness bounds, all in the
shipped ratios), and its bound is computed from those scaled settings;
`scripts/measure_worker_loss.sh` runs it at the shipped timing, nothing shortened, for the
runbook's table (STOCKSYNC_FAULT_TIMING=shipped, STOCKSYNC_FAULT_REPEATS=3).

One stack per module (17-31 s to a healthy stack on two cores), shared by the tests; the test
that kills a worker runs last.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
import requests

from devstack.airflow_standalone import wait_for_dags, wait_for_run
from devstack.celery_stack import AIRFLOW_TIMING, CeleryStack
from devstack.demo_seed import seed_demo
from devstack.local_pg import LocalPostgres
from devstack.local_stack import free_port
from include.stocksync.config.operations import worker_loss_bound
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests import fault_timing
from tests.conftest import QUIET_DAG_PROCESSOR_ENV, TEST_SETTINGS_ENV, TEST_TOKEN, SplitDatabases, active_freezes
from tests.integration.loop_helpers import shop_stock, truth

pytestmark = pytest.mark.slow

NIGHTLY = "inventory_nightly_sync"
PUSH = "inventory_full_push"
# The session's test settings that shorten time (retry delays, HTTP timeouts) stay out of the
# stack: its workers run stocksync.yaml's timing scaled as a whole (tests/fault_timing.py, shipped
# ratios; STOCKSYNC_FAULT_TIMING=shipped for the shipped values). What remains only sizes the
# scenario (small pages, a guardrail loose enough for deliberately drifted test shops).
TIMING_ENV = ("STOCKSYNC_RETRY_DELAY_SECONDS", "STOCKSYNC_MAX_RETRY_DELAY_SECONDS", "STOCKSYNC_HTTP_ATTEMPTS",
              "STOCKSYNC_HTTP_BACKOFF_SECONDS", "STOCKSYNC_HTTP_TIMEOUT_SECONDS")
SCENARIO_ENV = {k: v for k, v in TEST_SETTINGS_ENV.items() if k not in TIMING_ENV}
TIMING = fault_timing.scaled_settings()
STACK_TIMING_ENV = {**fault_timing.stocksync_env(), **fault_timing.airflow_env(AIRFLOW_TIMING)}
# The scheduler creates no scheduled runs: every run here is triggered over REST. (Unpausing the
# nightly would otherwise start its latest past slot at once, a whole run to wait out before the
# first test.)
NO_SCHEDULED_RUNS = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
REPEATS = int(os.environ.get("STOCKSYNC_FAULT_REPEATS", "1"))
# A run that lands all its tasks on one worker by chance is run again, at most this many times.
SPREAD_ATTEMPTS = 4


@pytest.fixture(scope="module")
def stack(pg: LocalPostgres, split_databases: SplitDatabases, wms_process: Any, webhook: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    base = tmp_path_factory.mktemp("celery-stack")
    celery = CeleryStack(base / "airflow", pg=pg, shop_dsn=split_databases.shop,
                         stocksync_dsn=split_databases.stocksync, wms_url=wms_process.url, token=TEST_TOKEN,
                         webhook_url=webhook.url, metadata_db="airflow_celery_test", fresh_metadata=True,
                         local_dir=base / "local", reports_dir=base / "reports", availability_port=free_port(),
                         extra_env={**SCENARIO_ENV, **STACK_TIMING_ENV, **NO_SCHEDULED_RUNS, **QUIET_DAG_PROCESSOR_ENV},
                         drop_env=TIMING_ENV)
    celery.start().start_supervisor()
    try:
        print(f"\nCelery stack healthy after {celery.startup_seconds:.1f}s (logs {celery.logs})")
        wait_for_dags(celery, {NIGHTLY, PUSH})
        for dag_id in (NIGHTLY, PUSH):  # a paused DAG's triggered runs stay queued
            response = celery.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
            assert response.status_code == 200, response.text
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


def test_nightly_and_push_spread_over_both_workers(stack: CeleryStack, clean_shop: str, stocksync_dsn: str,
                                                   wms: Any) -> None:
    settle(stack, NIGHTLY)
    seed_demo(clean_shop, wms.admin, skus=40, seed=3, orders=30)

    nightly_id, nightly_tis, nightly_runs = run_spread(stack, NIGHTLY, {})
    assert pipeline.get_run(stocksync_dsn, nightly_id)["status"] == "applied"
    assert shop_stock(clean_shop) == truth(clean_shop, wms)
    assert active_freezes(clean_shop) == []

    # the WMS moves; a full push over REST repairs it, again on both workers
    moved = wms.admin.items()[:5]
    wms.admin.set_items([{"sku": item["sku"], "on_hand": item["on_hand"] + 7} for item in moved])
    push_id, push_tis, push_runs = run_spread(stack, PUSH, {"dry_run": False, "freeze_mode": "apply"})
    record = pipeline.get_run(stocksync_dsn, push_id)
    assert record["status"] == "applied" and record["triggered_by"] == stack.username
    assert shop_stock(clean_shop) == truth(clean_shop, wms)
    assert active_freezes(clean_shop) == []
    # the availability service started with the stack answers the shop's number
    sku = moved[0]["sku"]
    assert ask_availability(stack, sku) == shop_stock(clean_shop)[sku]
    print(f"\nnightly {nightly_id}: {len(nightly_tis)} tasks on "
          f"{sorted({worker_of(t['hostname']) for t in nightly_tis.values()})} ({nightly_runs} run(s)); "
          f"push {push_id}: ({push_runs} run(s)); per task: "
          + ", ".join(f"{task}={worker_of(ti['hostname'])}" for task, ti in sorted(push_tis.items()))
          + "; validate_counts took " + ", ".join(f"{(tis.get('validate_counts') or {}).get('duration')} s"
                                                  for tis in (nightly_tis, push_tis))
          + f" (Celery config {stack.env(stack.processes[-1]).get('AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS')})")


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


@pytest.mark.parametrize("repetition", range(1, REPEATS + 1))
def test_worker_killed_holding_the_lock_the_stack_stays_up_and_the_night_syncs(
        stack: CeleryStack, clean_shop: str, stocksync_dsn: str, wms: Any, webhook: Any, repetition: int) -> None:
    settle(stack, NIGHTLY)
    seed_demo(clean_shop, wms.admin, skus=40, seed=5 + repetition, orders=30)
    expected = truth(clean_shop, wms)
    assert shop_stock(clean_shop) != expected  # the run has something to repair

    # load_stock takes the stock lock, then waits on ours inside its apply transaction: it is
    # surely mid-apply, holding the lock, when its worker dies
    holder = psycopg.connect(clean_shop)
    try:
        holder.execute("LOCK TABLE shop.stock IN SHARE MODE")
        run_id = trigger(stack, NIGHTLY, {"freeze_mode": "full"})
        waiting_pid = load_waiting_on_lock(clean_shop)  # no other run is active (settled above)
        load = task_instances(stack, NIGHTLY, run_id)["load_stock"]
        assert load["state"] == "running" and load["try_number"] == 1, load
        victim = worker_of(load["hostname"])
        others = {name: proc.pid for name, proc in stack.running.items() if name != victim}
        killed = stack.kill_worker(victim)
    finally:
        holder.rollback()  # the dead worker's backend gets the lock, finds its client gone, rolls back
        holder.close()

    run = wait_for_run(stack, NIGHTLY, run_id, timeout=400)
    assert run["state"] == "success", stack.log_tail("scheduler")
    # the stack stayed up: the dead worker was started again, nothing else was touched
    assert victim in [r.name for r in stack.restarts]
    assert {name: proc.pid for name, proc in stack.running.items() if name != victim} == others
    assert stack.running[victim].pid not in killed.pids and stack.running[victim].poll() is None
    stack.wait_healthy(timeout=120)  # every worker answers again, the scheduler is healthy

    tis = task_instances(stack, NIGHTLY, run_id)
    retried = tis["load_stock"]
    # the retry ran on a live worker (the other one, or the dead one started again), never the dead process
    assert retried["try_number"] == 2 and worker_of(retried["hostname"]) in stack.workers, retried
    assert retried["pid"] not in killed.pids
    tries = stack.api("GET", f"/api/v2/dags/{NIGHTLY}/dagRuns/{run_id}/taskInstances/load_stock/tries").json()
    first = next(t for t in tries["task_instances"] if t["try_number"] == 1)
    assert worker_of(first["hostname"]) == victim and first["state"] == "failed", first
    with connect(clean_shop, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            (waiting_pid,)).fetchone() == (0,)
        freeze = conn.execute("SELECT set_at, released_at, expires_at FROM shop.checkout_freezes "
                              "WHERE set_by = %s", (run_id,)).fetchall()

    assert shop_stock(clean_shop) == expected  # WMS figures minus the orders it had not counted
    assert active_freezes(clean_shop) == []
    record = pipeline.get_run(stocksync_dsn, run_id)
    assert record["status"] == "applied" and record["changed"] > 0
    # one freeze, released by the run's teardown within the stated bound: Airflow's detection, one
    # retry delay, the retry's start, the retried apply and the teardown's start (ops_settings)
    assert len(freeze) == 1
    set_at, released_at, expires_at = freeze[0]
    assert released_at is not None and released_at < expires_at, freeze
    window = (released_at - set_at).total_seconds()
    apply_seconds = (datetime.fromisoformat(retried["end_date"])
                     - datetime.fromisoformat(retried["start_date"])).total_seconds()
    bound = worker_loss_bound(TIMING, apply_seconds)
    kill_to_release = released_at.timestamp() - killed.killed_at
    assert kill_to_release <= bound, (kill_to_release, bound)
    # the lost try is on the run and alerted (sent by the teardown once checkout reopened)
    lost = [w for w in record["warnings"] if w["kind"] == "task_lost"]
    assert [(w["task_id"], w["try_number"]) for w in lost] == [("load_stock", 2)], record["warnings"]
    sent = [a for a in webhook.received() if a["body"].get("run_id") == run_id and a["body"].get("kind") == "task_lost"]
    assert len(sent) == 1 and sent[0]["body"]["task_id"] == "load_stock"
    print("\nFAULT-MEASURE " + json.dumps({
        "fault": f"kill -9 of worker {victim} holding the stock lock in load_stock (Celery, rep {repetition})",
        "setting": f"task_instance_heartbeat_timeout {TIMING.operations.airflow_task_heartbeat_timeout_seconds:g} s "
                   f"+ detection {TIMING.operations.airflow_heartbeat_check_seconds:g} s, "
                   f"retry delay <= {TIMING.max_retry_delay_seconds:g} s (x{fault_timing.factor():g} shipped)",
        "bound_seconds": round(bound, 1), "kill_to_release_seconds": round(kill_to_release, 1),
        "freeze_seconds": round(window, 1), "synced": record["status"] == "applied",
        "alert": "task_lost delivered", "retried_on": worker_of(retried["hostname"])}))
