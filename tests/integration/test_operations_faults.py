"""Operations under faults through the real DAGs (`dag.test()`), the real shop DB, the WMS
service and the alert webhook: a worker killed mid-run, a lost database connection, a slow WMS, an
unwritable or full reports folder, a feed of stale SKUs.

Each test measures the freeze window it caused (`FAULT-MEASURE` lines, printed with `-s`) and
checks the alert was recorded and delivered and what became of shop stock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack.demo_seed import seed_demo
from include.stocksync.config.settings import PROJECT_ROOT, load_settings
from include.stocksync.shop import freeze
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests import fault_timing
from tests.conftest import active_freezes, fresh_dag, stock_fingerprint
from tests.fault_servers import tiny_full_tmpfs
from tests.integration.test_nightly_sync import alerts_for, expected_stock, run_nightly

pytestmark = pytest.mark.slow

# Short liveness bounds for the tests: a step beats every 0.5 s and a run silent for longer than
# max(2, max_retry_delay 1 + 3 x 0.5) = 2.5 s is dead (ops_settings.heartbeat_bound).
OPS_ENV = {
    "STOCKSYNC_OPERATIONS__HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "STOCKSYNC_OPERATIONS__HEARTBEAT_TIMEOUT_SECONDS": "2",
    "STOCKSYNC_OPERATIONS__ALERT_RETRY_AFTER_SECONDS": "0.5",
}
HEARTBEAT_BOUND = 2.5


def measure(fault: str, **values: Any) -> None:
    """One line of the fault table (freeze window, alert, stock result) for the report."""
    print(f"FAULT-MEASURE {json.dumps({'fault': fault, **values}, default=str)}")


@pytest.fixture
def ops_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in OPS_ENV.items():
        monkeypatch.setenv(name, value)
    return OPS_ENV


@pytest.fixture
def seeded(clean_shop: str, stocksync_dsn: str, wms: Any) -> dict[str, Any]:
    """The demo shop (`dsn`, the shop's database) and stocksync's own database (`store`)."""
    seed = seed_demo(clean_shop, wms.admin, skus=40, seed=12, orders=20)
    return {"dsn": clean_shop, "store": stocksync_dsn, "seed": seed}


def run_record(dsn: str, run_id: str) -> dict[str, Any]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM stocksync.sync_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None, run_id
    return row


def alert_rows(dsn: str, run_id: str) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT alert_id, kind, channel, task_id, delivered, delivery_error, attempts, "
                           "last_attempt_at, queued_by, payload FROM stocksync.alerts WHERE run_id = %s "
                           "ORDER BY alert_id", (run_id,)).fetchall()


def freezes_of(dsn: str, set_by: str) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT freeze_id, set_at, expires_at, released_at FROM shop.checkout_freezes "
                           "WHERE set_by = %s ORDER BY freeze_id", (set_by,)).fetchall()


def nightly_holding_a_freeze(dsn: str, store: str, activity: str) -> str | None:
    """The nightly run that holds an open freeze in the shop (`dsn`) while a backend matching
    `activity` (a pg_stat_activity condition, cluster-wide) exists; the runs are in `store`."""
    with connect(dsn) as conn:
        if not conn.execute(f"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE {activity})").fetchone()[0]:
            return None
        holders = [row[0] for row in conn.execute("SELECT set_by FROM shop.checkout_freezes "
                                                  "WHERE released_at IS NULL")]
    with connect(store) as conn:
        row = conn.execute("SELECT run_id FROM stocksync.sync_runs WHERE dag_id = 'inventory_nightly_sync' "
                           "AND run_id = ANY(%s)", (holders,)).fetchone()
    return row[0] if row else None


def wait_for(what: str, check: Any, timeout: float = 180.0, every: float = 0.2) -> Any:
    """Poll until `check()` returns something truthy (a wait for a state, not a timed assertion:
    `timeout` only keeps a broken test from hanging)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def silent_seconds(dsn: str, run_id: str) -> float:
    with connect(dsn) as conn:
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 "
                           "FROM stocksync.sync_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return float(row[0])


# -------------------------------------------------------------------------- a worker killed mid-run

CHILD = """
import os, sys
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag(sys.argv[1])
dag.test()
"""


def test_a_killed_worker_s_freeze_is_released_by_the_next_run_of_the_other_dag(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, ops_env: dict[str, str],
        tmp_path: Path) -> None:
    """kill -9 of the process running the nightly (its teardown dies with it) while the extract
    runs: checkout stays closed and the record says running, until the next run of either DAG
    (here the ops push) finds the run silent past the bound in its setup, releases its freeze,
    closes it as abandoned with a note, records a warning on itself and alerts. A manual freeze
    set meanwhile is left alone."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    wms.admin.faults(latency_ms=4000)  # each page takes 4 s: the kill lands inside the extract
    log = (tmp_path / "child.log").open("w")
    child = subprocess.Popen([sys.executable, "-c", CHILD, "inventory_nightly_sync"], cwd=PROJECT_ROOT,
                             env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def extracting() -> str | None:
            if child.poll() is not None:
                tail = (tmp_path / "child.log").read_text()[-3000:]
                raise AssertionError(f"the nightly's process ended first:\n{tail}")
            return nightly_holding_a_freeze(dsn, store, "application_name = 'stocksync-heartbeat'")

        dead_run = wait_for("the nightly to freeze checkout and beat inside its extract", extracting)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the worker dies: no teardown, no callback
        child.wait()
        log.close()
    killed_at = time.monotonic()
    wms.admin.clear_faults()

    assert [f["freeze_id"] for f in freezes_of(dsn, dead_run) if f["released_at"] is None]
    assert run_record(store, dead_run)["status"] == "running"
    # the dead run stops beating; once it has been silent past the bound it is dead
    wait_for("the dead run to be silent past the bound", lambda: silent_seconds(store, dead_run) > HEARTBEAT_BOUND,
             timeout=60)
    with connect(dsn) as conn:
        manual = freeze.set_freeze(conn, set_by="ops:maintenance", reason="manual maintenance",
                                   message="Back at {expected_end}.", ttl_seconds=3600)
        conn.commit()
    try:
        wms_items = wms.admin.items()
        push = fresh_dag(dagbag, "inventory_full_push").test(run_conf={"dry_run": False})

        assert push.state == DagRunState.SUCCESS
        dead = run_record(store, dead_run)
        assert dead["status"] == "abandoned" and dead["closed_at"] is not None
        assert f"declared dead by {push.run_id}" in dead["error"]
        assert [w["kind"] for w in dead["warnings"]] == ["abandoned"]
        (released,) = freezes_of(dsn, dead_run)
        nxt = run_record(store, push.run_id)
        push_freeze = freezes_of(dsn, push.run_id)[0]
        # released by the push's setup, before the push closed checkout itself
        assert released["released_at"] <= push_freeze["set_at"]
        assert dead["freeze_seconds"] == pytest.approx(
            (released["released_at"] - released["set_at"]).total_seconds(), abs=0.01)
        orphaned = [w for w in nxt["warnings"] if w["kind"] == "orphaned_freeze"]
        assert [(w["run_id"], w["freezes_released"]) for w in orphaned] == [(dead_run, 1)]
        # alerted: recorded on the dead run, sent by the push's teardown after its own release
        alerts = alert_rows(store, dead_run)
        assert [(a["kind"], a["channel"], a["delivered"], a["queued_by"]) for a in alerts] == [
            ("orphaned_freeze", "webhook", True, push.run_id)]
        assert alerts[0]["last_attempt_at"] >= freezes_of(dsn, push.run_id)[0]["released_at"]
        sent = [a for a in alerts_for(webhook, dead_run) if a.get("kind") == "orphaned_freeze"]
        assert len(sent) == 1 and push.run_id in sent[0]["text"]
        # the manual freeze is untouched; the push's stock is the truth
        assert (manual.freeze_id, "ops:maintenance") in active_freezes(dsn)
        assert nxt["status"] == "applied"
        expected = expected_stock(dsn, wms_items, nxt["orders_counted_until"])
        assert {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)} == {s: q for s, (q, _) in expected.items()}
        measure("worker killed (kill -9) mid-extract", freeze_seconds=round(dead["freeze_seconds"], 1),
                silent_before_next_run=round(time.monotonic() - killed_at, 1),
                alert=f"{alerts[0]['kind']} delivered={alerts[0]['delivered']}", stock="applied by the next run")
    finally:
        with connect(dsn) as conn:
            freeze.release_freezes(conn, set_by="ops:maintenance")
            conn.commit()


# ------------------------------ a crashed run, then a new run soon after (shipped timing, scaled)

# The new run starts this long after the crash (scaled with the rest: tests/fault_timing.py).
NEW_RUN_AFTER_SECONDS = 10.0
REPEATS = int(os.environ.get("STOCKSYNC_FAULT_REPEATS", "1"))


def apply_waiting_on_lock(dsn: str, store: str, child: subprocess.Popen[bytes], log_path: Path) -> str:
    """The run whose apply (load_stock) waits on our stock lock, with its freeze set."""
    def waiting() -> str | None:
        if child.poll() is not None:
            raise AssertionError(f"the nightly's process ended first:\n{log_path.read_text()[-3000:]}")
        return nightly_holding_a_freeze(dsn, store, "wait_event_type = 'Lock' "
                                        "AND query ILIKE '%%LOCK TABLE %%stock IN EXCLUSIVE MODE%%'")

    return str(wait_for("the nightly's apply to wait on the stock lock", waiting, timeout=240))


@pytest.mark.parametrize("repetition", range(1, REPEATS + 1))
def test_a_crashed_run_s_freeze_is_released_by_a_run_started_soon_after(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, repetition: int) -> None:
    """kill -9 of the process running the nightly (`dag.test()`) while its apply holds the stock
    lock, then a new nightly 10 s later, all at the shipped timing scaled by one factor
    (tests/fault_timing.py; `scripts/measure_worker_loss.sh` runs it unscaled). The new run's setup finds the
    crashed run's freeze; Airflow still shows the crashed load_stock running (nothing will ever
    retry it) and it has stopped beating: the new run waits, beating itself, until the silence
    passes the heartbeat bound (within which Airflow would have retried a lost worker's task),
    then releases the freeze, closes the crashed run as abandoned, alerts `orphaned_freeze` and
    syncs the night. The crashed freeze is released long before its TTL."""
    from airflow.utils.state import DagRunState

    from include.stocksync.config.operations import heartbeat_bound

    # the retry delays (the heartbeat bound's floor), the run heartbeat and its bound, the holder
    # wait: the shipped values scaled in their shipped ratios, for this process and the crashing one
    timing = fault_timing.scaled_settings()
    for name, value in fault_timing.stocksync_env().items():
        monkeypatch.setenv(name, value)
    dsn, store = seeded["dsn"], seeded["store"]
    log_path = tmp_path / "child.log"
    env = dict(os.environ)
    holder = psycopg.connect(dsn)
    try:
        holder.execute("LOCK TABLE shop.stock IN SHARE MODE")
        with log_path.open("w") as log:
            child = subprocess.Popen([sys.executable, "-c", CHILD, "inventory_nightly_sync"], cwd=PROJECT_ROOT,
                                     env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            crashed = apply_waiting_on_lock(dsn, store, child, log_path)
        finally:
            os.killpg(child.pid, signal.SIGKILL)  # the process dies with its teardown: nobody releases
            child.wait()
    finally:
        holder.rollback()  # the dead apply's backend gets the lock, finds its client gone, rolls back
        holder.close()
    killed_at = time.time()
    assert run_record(store, crashed)["status"] == "running"
    new_run_after = NEW_RUN_AFTER_SECONDS * fault_timing.factor()
    time.sleep(new_run_after)  # the new run starts a while after the crash

    wms_items = wms.admin.items()
    nxt = run_nightly(dagbag)

    assert nxt.state == DagRunState.SUCCESS
    dead, new = run_record(store, crashed), run_record(store, nxt.run_id)
    assert new["status"] == "applied"
    assert dead["status"] == "abandoned" and f"declared dead by {nxt.run_id}" in dead["error"]
    assert "Airflow still shows load_stock running" in dead["error"]
    (released,) = freezes_of(dsn, crashed)
    (own,) = freezes_of(dsn, nxt.run_id)
    # released by the new run's setup, before it closed checkout itself, and before the TTL
    assert released["released_at"] <= own["set_at"]
    assert released["released_at"] < released["expires_at"]
    silent_when_released = released["released_at"].timestamp() - killed_at
    assert silent_when_released > new_run_after  # it was not released on sight: the evidence was waited for
    orphaned = [w for w in new["warnings"] if w["kind"] == "orphaned_freeze"]
    assert [(w["run_id"], w["freezes_released"]) for w in orphaned] == [(crashed, 1)]
    alerts = alert_rows(store, crashed)
    assert [(a["kind"], a["delivered"], a["queued_by"]) for a in alerts] == [
        ("orphaned_freeze", True, nxt.run_id)]
    assert [a["kind"] for a in alerts_for(webhook, crashed)] == ["orphaned_freeze"]
    expected = expected_stock(dsn, wms_items, new["orders_counted_until"])
    assert {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)} == {s: q for s, (q, _) in expected.items()}
    assert active_freezes(dsn) == []
    ttl = (released["expires_at"] - released["set_at"]).total_seconds()
    bound = heartbeat_bound(timing) + timing.operations.heartbeat_interval_seconds
    measure(f"kill -9 of the nightly's process holding the stock lock, new run {new_run_after:g} s later "
            f"(rep {repetition})",
            setting=f"heartbeat bound {heartbeat_bound(timing):g} s, holder_wait "
                    f"{timing.operations.holder_wait_seconds:g} s, freeze TTL {ttl:g} s "
                    f"(x{fault_timing.factor():g} shipped)",
            bound_seconds=round(bound, 1), kill_to_release_seconds=round(silent_when_released, 1),
            freeze_seconds=round(dead["freeze_seconds"], 1), synced=new["status"] == "applied",
            alert=f"{alerts[0]['kind']} delivered={alerts[0]['delivered']}")


def test_a_live_holder_is_waited_for_then_refused_and_recorded(
        dagbag: Any, seeded: dict[str, Any], webhook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another sync run holds a freeze and keeps beating (not an Airflow run here: nothing of it
    runs or is due in Airflow, but it beats): it is alive. The new nightly waits for it (3 s here),
    then refuses to start; the refusal is on its record, nothing is written, the holder's freeze
    is untouched."""
    from airflow.utils.state import DagRunState

    from include.stocksync.runs.lifecycle import Heartbeat
    from include.stocksync.sync.pipeline import open_run

    monkeypatch.setenv("STOCKSYNC_OPERATIONS__HOLDER_WAIT_SECONDS", "3")
    monkeypatch.setenv("STOCKSYNC_OPERATIONS__HEARTBEAT_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("STOCKSYNC_OPERATIONS__HEARTBEAT_TIMEOUT_SECONDS", "4")
    dsn, store = seeded["dsn"], seeded["store"]
    live = "live-holder-run"
    open_run(store, run_id=live, dag_id="inventory_full_push", settings=load_settings())
    with connect(dsn) as conn:
        freeze.set_freeze(conn, set_by=live, reason="a push", message="Back at {expected_end}.", ttl_seconds=300)
        conn.commit()
    fingerprint = stock_fingerprint(dsn)
    try:
        with Heartbeat(store, live, 0.2):  # beats far more often than the 3 beats of 1 s it could miss
            dag_run = run_nightly(dagbag)
        assert dag_run.state == DagRunState.FAILED
        run = run_record(store, dag_run.run_id)
        assert run["status"] == "failed" and f"another stocksync run, {live} of inventory_full_push" in run["error"]
        assert "waited" in run["error"] and "holder_wait_seconds" in run["error"]
        assert dag_run.get_task_instance("freeze_checkout").try_number == 1  # refused, not retried
        assert freezes_of(dsn, dag_run.run_id) == []
        assert [f["released_at"] for f in freezes_of(dsn, live)] == [None]
        assert run_record(store, live)["status"] == "running"
        assert stock_fingerprint(dsn) == fingerprint
    finally:
        with connect(dsn) as conn:
            freeze.release_freezes(conn, set_by=live)
            conn.commit()


def test_a_holder_that_died_during_the_run_is_released_by_its_teardown(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any) -> None:
    """While the nightly extracts, another sync run's freeze appears whose run stopped beating a
    minute ago and that Airflow knows nothing of (a run of another deployment's scheduler, say).
    The nightly's setup never saw it; its teardown judges it (dead: nothing of it runs or is due
    in Airflow and it missed more than 3 beats), releases it, and the run's record and alert say
    so: the night does not read as a plain success with checkout held closed by a dead run."""
    from airflow.utils.state import DagRunState

    from include.stocksync.sync.pipeline import open_run

    dsn, store = seeded["dsn"], seeded["store"]
    dead_run = "run-that-died-meanwhile"
    wms.admin.faults(latency_ms=1500)  # the extract takes a few seconds: the holder appears inside it
    planted = threading.Event()

    def plant_when_frozen() -> None:
        def frozen() -> bool:
            with connect(dsn) as conn:
                return conn.execute("SELECT 1 FROM shop.checkout_freezes WHERE set_by LIKE 'manual%%' "
                                    "AND released_at IS NULL").fetchone() is not None
        wait_for("the nightly's freeze", frozen, timeout=120)
        open_run(store, run_id=dead_run, dag_id="inventory_full_push", settings=load_settings())
        with connect(store) as conn:
            conn.execute("UPDATE stocksync.sync_runs SET heartbeat_at = clock_timestamp() - interval '60 seconds' "
                         "WHERE run_id = %s", (dead_run,))
            conn.commit()
        with connect(dsn) as conn:
            freeze.set_freeze(conn, set_by=dead_run, reason="a sync", message="Back at {expected_end}.",
                              ttl_seconds=300)
            conn.commit()
        planted.set()

    thread = threading.Thread(target=plant_when_frozen)
    thread.start()
    try:
        dag_run = run_nightly(dagbag)
    finally:
        thread.join()
        wms.admin.clear_faults()

    assert planted.is_set() and dag_run.state == DagRunState.SUCCESS
    run, dead = run_record(store, dag_run.run_id), run_record(store, dead_run)
    assert run["status"] == "applied"
    assert dead["status"] == "abandoned" and f"declared dead by {dag_run.run_id}" in dead["error"]
    assert "Airflow has none of its tasks running or due" in dead["error"]
    (released,) = freezes_of(dsn, dead_run)
    (own,) = freezes_of(dsn, dag_run.run_id)
    assert released["released_at"] is not None and released["released_at"] >= own["released_at"]
    assert [(w["kind"], w["run_id"]) for w in run["warnings"]] == [("orphaned_freeze", dead_run)]
    assert [(a["kind"], a["delivered"], a["task_id"]) for a in alert_rows(store, dead_run)] == [
        ("orphaned_freeze", True, "release_freeze")]
    assert active_freezes(dsn) == []


# ----------------------------------------------------------------- a lost database connection mid-step

def test_a_terminated_backend_mid_apply_keeps_its_error_on_the_run(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any) -> None:
    """The apply waits on the stock lock we hold; another connection terminates its backend
    (pg_terminate_backend). The error is recorded on the run record (a fresh connection records
    it: the step's own is gone), the try is retried, and the retry applies the WMS truth."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    wms_items = wms.admin.items()
    locked, done = threading.Event(), threading.Event()
    terminated: list[int] = []

    def hold_lock_and_terminate() -> None:
        with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as killer:
            holder.execute("LOCK TABLE shop.stock IN EXCLUSIVE MODE")  # conflicts with the apply's lock
            locked.set()
            while not done.is_set() and not terminated:
                row = killer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'stocksync' "
                    "AND wait_event_type = 'Lock' AND query ILIKE '%%LOCK TABLE%%stock%%'").fetchone()
                if row:
                    killer.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    terminated.append(int(row[0]))
                else:
                    time.sleep(0.05)
            holder.rollback()  # the lock goes with the first termination: the retry gets it

    thread = threading.Thread(target=hold_lock_and_terminate)
    thread.start()
    try:
        assert locked.wait(30)
        dag_run = run_nightly(dagbag)
    finally:
        done.set()
        thread.join()

    assert terminated, "the apply never waited on the lock"
    assert dag_run.state == DagRunState.SUCCESS
    run = run_record(store, dag_run.run_id)
    assert run["status"] == "applied"
    assert "administrator command" in run["first_error"] and run["first_error"].startswith("load:")
    assert [(a["stage"], a["kind"]) for a in run["attempts"]] == [("load", "transient")]
    assert dag_run.get_task_instance("load_stock").try_number == 2
    expected = expected_stock(dsn, wms_items, run["orders_counted_until"])
    assert {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)} == {s: q for s, (q, _) in expected.items()}
    assert active_freezes(dsn) == []
    measure("pg_terminate_backend of the apply's backend", freeze_seconds=round(run["freeze_seconds"], 1),
            alert="none (retried, then applied; error kept on the run)", stock="applied on the retry")


# ------------------------------------------------------------------------------ a slow WMS, bounded

def test_a_slow_wms_cannot_hold_checkout_past_the_budget(
        dagbag: Any, seeded: dict[str, Any], webhook: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every WMS request takes 60 s (a WMS that accepts and stalls). In full mode the run's budget
    is its freeze TTL (20 s here, 300 s shipped) less the reserve for the later steps (10 s here,
    120 s shipped): the walk gets what is left (under the 10 s request timeout, so its request's
    timeout is cut to it), and the run fails permanently (no Airflow retry) so the teardown
    releases before the freeze would expire. (A scripted WMS in this process: its stalled
    handler threads do not hold anything up when it stops, unlike the simulator's graceful
    shutdown.)"""
    from airflow.utils.state import DagRunState

    from tests.conftest import TEST_TOKEN
    from tests.wms_double import Answer, ScriptedWms, page_body

    dsn, store = seeded["dsn"], seeded["store"]
    monkeypatch.setenv("STOCKSYNC_FREEZE_TTL_SECONDS", "20")
    monkeypatch.setenv("STOCKSYNC_OPERATIONS__BUDGET_RESERVE_SECONDS", "10")
    fingerprint = stock_fingerprint(dsn)
    stalled = ScriptedWms(TEST_TOKEN)
    stalled.answers[None] = Answer(body=page_body([]), delay=60)
    monkeypatch.setenv("AIRFLOW_CONN_WMS_API", stalled.connection_env())
    try:
        dag_run = run_nightly(dagbag)
    finally:
        stalled.stop()

    assert dag_run.state == DagRunState.FAILED
    run = run_record(store, dag_run.run_id)
    assert run["status"] == "failed" and "time budget" in run["error"]
    assert dag_run.get_task_instance("extract_wms_counts").try_number == 1, "a spent budget is not retried"
    (held,) = freezes_of(dsn, dag_run.run_id)
    window = (held["released_at"] - held["set_at"]).total_seconds()
    ttl = (held["expires_at"] - held["set_at"]).total_seconds()
    assert ttl == pytest.approx(20, abs=0.5)
    # the property: the run released checkout itself, before its TTL would have reopened it
    assert window < ttl
    assert stock_fingerprint(dsn) == fingerprint
    alerts = alert_rows(store, dag_run.run_id)
    assert [(a["task_id"], a["delivered"]) for a in alerts] == [("extract_wms_counts", True)]
    assert "time budget" in alerts_for(webhook, dag_run.run_id)[0]["error"]
    measure("WMS stalls every request (60 s), TTL 20 s", freeze_seconds=round(window, 1),
            alert="task_failed delivered=True", stock="unchanged (nothing written)")


# ----------------------------------------------------------------- reports folder unwritable or full

@pytest.mark.parametrize("folder", ["under-a-regular-file", "full-tmpfs"])
def test_a_report_that_cannot_be_written_does_not_fail_the_sync(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path, folder: str) -> None:
    """Root ignores file modes, so the folder is made unusable for root too: a path under a regular
    file (ENOTDIR) or a 64 KiB tmpfs filled to the last byte (ENOSPC). Validation falls back to an
    in-memory GX context, the sync applies, and the report's failure is one warning on the run and
    one alert, also when the teardown runs again."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    with _reports_folder(folder, tmp_path) as reports:
        monkeypatch.setenv("STOCKSYNC_REPORTS_DIR", str(reports))
        wms_items = wms.admin.items()

        dag_run = run_nightly(dagbag)

        assert dag_run.state == DagRunState.SUCCESS
        run = run_record(store, dag_run.run_id)
        assert run["status"] == "applied"
        expected = expected_stock(dsn, wms_items, run["orders_counted_until"])
        assert {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)} == {s: q for s, (q, _) in expected.items()}
        problems = [w for w in run["warnings"] if w["kind"] == "report_failed"]
        cause = "Not a directory" if folder == "under-a-regular-file" else "No space left on device"
        assert len(problems) == 1 and cause in problems[0]["error"], run["warnings"]
        assert not Path(run["report_path"]).exists()
        pipeline.release_freeze(store, run_id=dag_run.run_id, dag_id="inventory_nightly_sync",  # the teardown again
                                shop=open_shop(dsn))
        run = run_record(store, dag_run.run_id)
        assert [w["kind"] for w in run["warnings"]] == ["report_failed"]
        alerts = alert_rows(store, dag_run.run_id)
        assert [(a["kind"], a["channel"], a["delivered"]) for a in alerts] == [("report_failed", "webhook", True)]
        assert [a["kind"] for a in alerts_for(webhook, dag_run.run_id)] == ["report_failed"]
        measure(f"reports folder {folder}", freeze_seconds=round(run["freeze_seconds"], 1),
                alert="report_failed delivered=True (once)", stock="applied")


def _reports_folder(folder: str, tmp_path: Path) -> Any:
    import contextlib

    if folder == "under-a-regular-file":
        blocker = tmp_path / "a-regular-file"
        blocker.write_text("not a folder")
        return contextlib.nullcontext(blocker / "reports")

    @contextlib.contextmanager
    def full() -> Iterator[Path]:
        try:
            mounted = tiny_full_tmpfs()
            path = mounted.__enter__()
        except (subprocess.CalledProcessError, OSError) as exc:
            pytest.skip(f"cannot mount a tmpfs here ({exc}); the regular-file case covers an unwritable folder")
        try:
            yield path / "reports"
        finally:
            mounted.__exit__(None, None, None)

    return full()


# ---------------------------------------------------------------------------------- stale SKUs

def _shop_with_stale_skus(dsn: str, wms: Any, stale: int) -> list[str]:
    """A shop in line with a 40-SKU WMS, except that `stale` SKUs were last applied from a newer
    WMS sequence than the WMS now sends (a replayed or rolled-back feed)."""
    from tests.conftest import shop_in_line_with_wms

    shop_in_line_with_wms(dsn, wms, 40, 8, drift_share=0.0)
    skus = sorted(item["sku"] for item in wms.admin.items())[:stale]
    with connect(dsn) as conn:
        conn.execute("UPDATE shop.stock SET wms_seq = wms_seq + 1000000 WHERE sku = ANY(%s)", (skus,))
        conn.commit()
    return skus


def test_a_feed_where_41_percent_of_skus_are_stale_is_stopped(
        dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any, webhook: Any) -> None:
    from airflow.utils.state import DagRunState

    _shop_with_stale_skus(clean_shop, wms, 17)  # 17 of 40: 42.5%
    fingerprint = stock_fingerprint(clean_shop)

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.FAILED
    run = run_record(stocksync_dsn, dag_run.run_id)
    assert "max_stale_share: 42.5% of SKUs are stale" in run["error"]
    assert dag_run.get_task_instance("merge_in_window_orders").try_number == 1
    assert stock_fingerprint(clean_shop) == fingerprint
    assert active_freezes(clean_shop) == []
    assert [a["task_id"] for a in alert_rows(stocksync_dsn, dag_run.run_id)] == ["merge_in_window_orders"]
    assert load_settings().guardrails["max_stale_share"] == 0.10
    measure("feed with 42.5% stale SKUs", freeze_seconds=round(run["freeze_seconds"], 1),
            alert="task_failed delivered=True", stock="unchanged (guardrail)")


def test_a_few_stale_skus_are_skipped_and_the_rest_applied(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                           wms: Any) -> None:
    from airflow.utils.state import DagRunState

    stale = _shop_with_stale_skus(clean_shop, wms, 2)  # 5%: below the 10% limit

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    run = run_record(stocksync_dsn, dag_run.run_id)
    assert run["status"] == "applied" and run["stale"] == 2
    stale_check = next(g for g in run["guardrails"] if g["name"] == "max_stale_share")
    assert stale_check["success"] and stale_check["value"] == pytest.approx(0.05)
    with connect(stocksync_dsn) as conn:
        outcomes = dict(conn.execute("SELECT sku, outcome FROM stocksync.sku_audit WHERE run_id = %s AND sku = ANY(%s)",
                                     (dag_run.run_id, stale)).fetchall())
    assert outcomes == {sku: "stale" for sku in stale}
