"""Alerts that never block and never get lost, through the real DAGs (`dag.test()`), the
real shop DB, a webhook that accepts connections and never answers, a real SMTP server (aiosmtpd)
and one that is down, and the watchdog DAG; plus the nightly's DeadlineAlert callback as the
triggerer runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from include.stocksync.config.settings import PROJECT_ROOT, load_settings
from include.stocksync.ops import delivery, watchdog
from include.stocksync.shop import freeze
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from tests.conftest import active_freezes, fresh_dag
from tests.fault_servers import HangingServer, SmtpSink, free_port, smtp_connection_env
from tests.integration.test_nightly_sync import alerts_for, run_nightly
from tests.integration.test_operations_faults import (
    HEARTBEAT_BOUND,
    alert_rows,
    freezes_of,
    measure,
    run_record,
    silent_seconds,
    wait_for,
)

pytestmark = pytest.mark.slow

READ_TIMEOUT = 5.0  # the shipped operations.alert_read_timeout_seconds
CORRUPT = {"corrupt": [{"sku": "SKU-0000003", "field": "available", "value": -5}]}  # validation fails


@pytest.fixture
def ops_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_operations_faults import OPS_ENV

    for name, value in OPS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STOCKSYNC_OPERATIONS__ALERT_READ_TIMEOUT_SECONDS", str(READ_TIMEOUT))


@pytest.fixture
def seeded(clean_shop: str, wms: Any) -> str:
    from devstack.demo_seed import seed_demo

    seed_demo(clean_shop, wms.admin, skus=40, seed=21, orders=10)
    return clean_shop


@pytest.fixture
def smtp() -> Any:
    sink = SmtpSink()
    yield sink
    sink.stop()


def webhook_env(webhook: Any) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": webhook.port, "schema": "http"})


def test_a_hanging_webhook_never_delays_the_release_and_its_alert_is_retried(
        dagbag: Any, seeded: str, stocksync_dsn: str, wms: Any, webhook: Any, smtp: Any, ops_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The webhook accepts the connection and never answers; email goes to a real SMTP server.
    The failed validation only records its alert; the teardown releases the freeze first and then
    tries: the webhook times out (recorded undelivered, the read timeout as the reason), the email
    is delivered. When the webhook is back, the watchdog delivers the kept alert."""
    from airflow.utils.state import DagRunState

    hanging = HangingServer()
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS", hanging.connection_env())
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS_SMTP", smtp_connection_env(smtp.port))
    wms.admin.faults(**CORRUPT)
    try:
        dag_run = run_nightly(dagbag)
    finally:
        hanging.stop()

    assert dag_run.state == DagRunState.FAILED
    assert active_freezes(seeded) == []
    run = run_record(stocksync_dsn, dag_run.run_id)
    (held,) = freezes_of(seeded, dag_run.run_id)
    rows = {a["channel"]: a for a in alert_rows(stocksync_dsn, dag_run.run_id)}
    assert set(rows) == {"webhook", "email"}
    hook, mail = rows["webhook"], rows["email"]
    assert (hook["kind"], hook["task_id"], hook["delivered"], hook["attempts"]) == (
        "task_failed", "validate_counts", False, 1)
    assert "Read timed out" in hook["delivery_error"] and f"read timeout={READ_TIMEOUT}" in hook["delivery_error"]
    assert (mail["delivered"], mail["attempts"]) == (True, 1)
    # released first, sent after
    assert held["released_at"] <= hook["last_attempt_at"] and held["released_at"] <= mail["last_attempt_at"]
    # the failed task's callback did not hold the teardown back: it started sooner after the
    # failure than one attempt at the hanging webhook takes, so it cannot have waited for one
    failed_ti, teardown_ti = dag_run.get_task_instance("validate_counts"), dag_run.get_task_instance("release_freeze")
    callback_to_teardown = (teardown_ti.start_date - failed_ti.end_date).total_seconds()
    assert callback_to_teardown < READ_TIMEOUT
    (message,) = smtp.messages
    assert dag_run.run_id in message["Subject"] and message["To"] == "ops@shop.test"
    html = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_type() == "text/html")
    assert "quantity_non_negative" in html and "validate_counts" in html
    measure("webhook accepts and never answers (+ email up)", freeze_seconds=round(run["freeze_seconds"], 1),
            teardown_started_after_failure=round(callback_to_teardown, 2),
            alert="webhook undelivered (read timeout) then retried by the watchdog; email delivered",
            stock="unchanged (validation failed)")

    # the webhook is back: the watchdog's retry delivers the kept alert, once
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS", webhook_env(webhook))
    time.sleep(0.6)  # the watchdog retries alerts whose last attempt is older than 0.5 s here
    summary = watchdog.retry_alerts(stocksync_dsn, load_settings())
    assert (hook["alert_id"], "task_failed", "webhook", True, None) in [tuple(a) for a in summary["retried"]]
    again = {a["channel"]: a for a in alert_rows(stocksync_dsn, dag_run.run_id)}
    assert (again["webhook"]["delivered"], again["webhook"]["attempts"]) == (True, 2)
    assert again["email"]["attempts"] == 1  # delivered alerts are never sent again
    sent = alerts_for(webhook, dag_run.run_id)
    assert [a["task_id"] for a in sent] == ["validate_counts"] and "quantity_non_negative" in sent[0]["error"]


def test_an_smtp_server_that_is_down_is_recorded_and_retried(
        dagbag: Any, seeded: str, stocksync_dsn: str, wms: Any, webhook: Any, ops_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody listens on the SMTP port: the email attempt is refused at once (no wait), recorded
    undelivered with the reason; the webhook alert is delivered. When an SMTP server answers on
    the connection, the watchdog delivers the email."""
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS_SMTP", smtp_connection_env(free_port()))
    wms.admin.faults(**CORRUPT)

    dag_run = run_nightly(dagbag)

    assert dag_run.state == DagRunState.FAILED and active_freezes(seeded) == []
    rows = {a["channel"]: a for a in alert_rows(stocksync_dsn, dag_run.run_id)}
    assert (rows["webhook"]["delivered"], rows["email"]["delivered"]) == (True, False)
    assert "Connection refused" in rows["email"]["delivery_error"]
    assert [a["task_id"] for a in alerts_for(webhook, dag_run.run_id)] == ["validate_counts"]

    sink = SmtpSink()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_ALERTS_SMTP", smtp_connection_env(sink.port))
        time.sleep(0.6)  # the watchdog retries alerts whose last attempt is older than 0.5 s here
        watchdog.retry_alerts(stocksync_dsn, load_settings())
        assert len(sink.messages) == 1 and dag_run.run_id in sink.messages[0]["Subject"]
    finally:
        sink.stop()
    email = next(a for a in alert_rows(stocksync_dsn, dag_run.run_id) if a["channel"] == "email")
    assert (email["delivered"], email["attempts"]) == (True, 2)
    run = run_record(stocksync_dsn, dag_run.run_id)
    measure("SMTP server down", freeze_seconds=round(run["freeze_seconds"], 1),
            alert="webhook delivered; email undelivered (refused) then retried", stock="unchanged (validation failed)")


def test_the_watchdog_declares_a_dead_run_dead_alerts_a_long_freeze_once_and_retries_alerts(
        dagbag: Any, seeded: str, stocksync_dsn: str, webhook: Any, ops_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that froze checkout and died before its first step, a manual freeze open past the
    bound and an alert nobody sent: one watchdog run closes the dead run as abandoned and releases
    its freeze (never the manual one), alerts both once, and sends the old alert. A second run
    adds nothing."""
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("STOCKSYNC_OPERATIONS__FREEZE_ALERT_AFTER_SECONDS", "1")
    settings = load_settings()
    tag = uuid.uuid4().hex[:8]  # stocksync.alerts outlives a test's shop reset: names of this run only
    dead_run, maintenance, never_sent = f"manual__died-after-its-setup-{tag}", f"ops:maintenance-{tag}", \
        f"manual__never-sent-{tag}"
    pipeline.freeze_checkout(stocksync_dsn, run_id=dead_run, dag_id="inventory_nightly_sync", settings=settings,
                             shop=open_shop(seeded))
    with connect(seeded) as conn:
        manual = freeze.set_freeze(conn, set_by=maintenance, reason="manual maintenance",
                                   message="Back at {expected_end}.", ttl_seconds=3600)
        conn.commit()
    with connect(stocksync_dsn) as conn:
        (old_alert,) = delivery.queue(conn, settings, delivery.payload(
            kind=delivery.TASK_FAILED, text="stocksync: an alert whose teardown never came",
            dag_id="inventory_full_push",
            run_id=never_sent, task_id="extract_wms_counts", error="WMS unreachable"),
            queued_by=never_sent)
        conn.commit()
    try:
        wait_for("the dead run to be silent past the bound",
                 lambda: silent_seconds(stocksync_dsn, dead_run) > HEARTBEAT_BOUND, timeout=60)

        first = fresh_dag(dagbag, "stocksync_watchdog").test()
        second = fresh_dag(dagbag, "stocksync_watchdog").test()

        assert first.state == second.state == DagRunState.SUCCESS
        dead = run_record(stocksync_dsn, dead_run)
        assert dead["status"] == "abandoned" and "declared dead by stocksync_watchdog" in dead["error"]
        (held,) = freezes_of(seeded, dead_run)
        assert held["released_at"] is not None
        assert active_freezes(seeded) == [(manual.freeze_id, maintenance)]
        assert [(a["kind"], a["delivered"]) for a in alert_rows(stocksync_dsn, dead_run)] == [("run_abandoned", True)]
        overdue = alert_rows(stocksync_dsn, maintenance)
        assert [(a["kind"], a["delivered"]) for a in overdue] == [("freeze_overdue", True)]
        assert "not a sync run: left alone" in overdue[0]["payload"]["text"]
        sent_old = [a for a in alert_rows(stocksync_dsn, never_sent) if a["alert_id"] == old_alert]
        assert (sent_old[0]["delivered"], sent_old[0]["attempts"]) == (True, 1)
        assert [a["kind"] for a in alerts_for(webhook, dead_run)] == ["run_abandoned"]
        assert [a["kind"] for a in alerts_for(webhook, maintenance)] == ["freeze_overdue"]
        assert len(alerts_for(webhook, never_sent)) == 1
        measure("run dead after its setup (no heartbeat), found by the watchdog",
                freeze_seconds=round(dead["freeze_seconds"], 1), alert="run_abandoned delivered=True",
                stock="unchanged (nothing applied)")
    finally:
        with connect(seeded) as conn:
            freeze.release_freezes(conn, set_by=maintenance)
            conn.commit()


def test_the_nightly_deadline_alert_is_declared_and_its_callback_alerts_once(
        dagbag: Any, seeded: str, stocksync_dsn: str, webhook: Any) -> None:
    """What can be tested without a scheduler and a triggerer: the nightly declares a DeadlineAlert
    (logical date + operations.nightly_deadline_seconds) that Airflow serializes with its DAG
    (the ops push has none), and its callback, run by Airflow's CallbackTrigger exactly as the
    triggerer runs it, records and sends one alert per run. Whether the scheduler creates the
    deadline and the triggerer fires it on time is Airflow's part and is not exercised here
    (dag.test() runs neither)."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.triggers.callback import CallbackTrigger

    from include.stocksync.airflow.deadline import CALLBACK_PATH

    nightly = dagbag.get_dag("inventory_nightly_sync")
    (alert,) = nightly.deadline
    assert alert.reference.reference_name == "DagRunLogicalDateDeadline"
    assert alert.interval.total_seconds() == load_settings().operations.nightly_deadline_seconds == 3600
    assert alert.callback.path == CALLBACK_PATH
    assert not dagbag.get_dag("inventory_full_push").deadline
    serialized = json.dumps(DagSerialization.serialize_dag(nightly), default=str)
    assert CALLBACK_PATH in serialized and "DagRunLogicalDateDeadline" in serialized

    late_run = f"scheduled__late-night-{uuid.uuid4().hex[:8]}"  # stocksync.alerts outlives a test's shop reset
    context = {"dag_run": {"dag_id": "inventory_nightly_sync", "dag_run_id": late_run, "state": "running"},
               "deadline": {"id": "d-1", "deadline_time": "2026-11-23T03:30:00+00:00"}}

    async def fire() -> list[Any]:
        trigger = CallbackTrigger(callback_path=CALLBACK_PATH, callback_kwargs={"context": dict(context)})
        return [event.payload async for event in trigger.run()]

    first, second = asyncio.run(fire()), asyncio.run(fire())

    assert [e["state"] for e in first] == ["running", "success"]
    # the result is text: Airflow keeps it in a text column (a dict crashes a triggerer on PostgreSQL)
    assert json.loads(first[-1]["body"]) == {"recorded": True, "delivered": [True]}
    assert json.loads(second[-1]["body"]) == {"recorded": False, "reason": "already alerted"}
    rows = alert_rows(stocksync_dsn, late_run)
    assert [(a["kind"], a["task_id"], a["delivered"]) for a in rows] == [("deadline_missed", "deadline", True)]
    (sent,) = alerts_for(webhook, late_run)
    assert "has not finished by its deadline 2026-11-23T03:30:00+00:00" in sent["text"]


# --- every DAG's failure alerts ------------------------------------------------------------------------
# How each DAG in dags/ is made to fail at once and for good, the task that fails, and words of the
# error its alert must carry. The file-drop deployment runs the nightly on a file source: its own case.
NO_TOKEN = "has no password: put the WMS bearer token there"
FAILURES = {
    "inventory_nightly_sync": ("extract_wms_counts", NO_TOKEN),
    "inventory_full_push": ("extract_wms_counts", NO_TOKEN),
    "inventory_intraday_sync": ("read_change_feed", NO_TOKEN),
    "orders_to_wms": ("send_orders", NO_TOKEN),
    "stocksync_watchdog": ("reap_dead_runs", "checkout_freezes"),
}
FILE_DROP_FAILURE = ("wait_for_wms_file", "no WMS stock file arrived")


PUBLIC_AIRFLOW = "https://airflow.shop.test"


def assert_failure_alerted(dsn: str, webhook: Any, dag_run: Any, task_id: str, cause: str) -> None:
    """The failed task's alert is recorded (kind, task, payload naming the run) and delivered: the
    webhook received a body naming the DAG, run, task and cause, and the run's page."""
    from airflow.utils.state import TaskInstanceState

    dag_id, run_id = dag_run.dag_id, dag_run.run_id
    # (the watchdog's run itself succeeds: its last task runs whatever failed before it)
    assert dag_run.get_task_instance(task_id).state == TaskInstanceState.FAILED, (dag_id, run_id)
    rows = [a for a in alert_rows(dsn, run_id) if a["task_id"] == task_id]
    assert [(a["kind"], a["channel"], a["delivered"], a["attempts"]) for a in rows] == [
        ("task_failed", "webhook", True, 1)], (dag_id, rows)
    recorded = rows[0]["payload"]
    assert (recorded["dag_id"], recorded["run_id"], recorded["task_id"], recorded["kind"]) == (
        dag_id, run_id, task_id, "task_failed"), dag_id
    assert cause in recorded["error"], (dag_id, recorded["error"])
    sent = [a for a in alerts_for(webhook, run_id) if a["task_id"] == task_id]
    assert len(sent) == 1, (dag_id, sent)
    body = sent[0]
    assert (body["dag_id"], body["kind"]) == (dag_id, "task_failed") and cause in body["error"], (dag_id, body)
    assert body["report_url"] == f"{PUBLIC_AIRFLOW}/stocksync/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"
    assert dag_id in body["text"], body["text"]


def test_every_dags_failure_is_alerted_delivered_and_recorded(
        dagbag: Any, clean_shop: str, stocksync_dsn: str, webhook: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast permanent failure of each DAG declared in dags/ (the WMS Connection without its token;
    the watchdog's shop database without its freeze table; the file-drop nightly's file never
    arriving) sends one alert, delivered to the webhook and recorded with what it was. A DAG whose
    failure notifier cannot render its payload (a macro only some DAGs declare) alerts too."""
    declared = {fresh_dag(dagbag, path.stem).dag_id for path in sorted((PROJECT_ROOT / "dags").glob("*.py"))
                if not path.stem.startswith("_")}
    assert declared == set(FAILURES), "a DAG without a failure case here: add how it fails"
    wms_conn = json.loads(os.environ["AIRFLOW_CONN_WMS_API"])
    monkeypatch.setenv("AIRFLOW_CONN_WMS_API", json.dumps({k: v for k, v in wms_conn.items() if k != "password"}))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", PUBLIC_AIRFLOW)  # the alerts link each run's page there
    for dag_id, (task_id, cause) in FAILURES.items():
        if dag_id == "stocksync_watchdog":
            continue
        assert_failure_alerted(stocksync_dsn, webhook, fresh_dag(dagbag, dag_id).test(), task_id, cause)

    with connect(clean_shop) as conn:  # the watchdog's reads fail: a permanent database error
        conn.execute("ALTER TABLE shop.checkout_freezes RENAME TO checkout_freezes_away")
        conn.commit()
    try:
        watched = fresh_dag(dagbag, "stocksync_watchdog").test()
    finally:
        with connect(clean_shop) as conn:
            conn.execute("ALTER TABLE shop.checkout_freezes_away RENAME TO checkout_freezes")
            conn.commit()
    assert_failure_alerted(stocksync_dsn, webhook, watched, *FAILURES["stocksync_watchdog"])

    drop = tmp_path / "wms-drop"
    drop.mkdir()
    monkeypatch.setenv("STOCKSYNC_WMS_SOURCE", "file")
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__LOCATION", drop.as_uri())
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__WAIT_DEADLINE_SECONDS", "1")
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__POKE_INTERVAL_SECONDS", "0.5")
    assert_failure_alerted(stocksync_dsn, webhook, fresh_dag(dagbag, "inventory_nightly_sync").test(),
                           *FILE_DROP_FAILURE)


def test_an_alert_sent_while_the_shop_elsewhere_is_still_frozen_says_so(
        seeded: str, stocksync_dsn: str, webhook: Any, ops_env: None) -> None:
    """The shop in a database of its own (the default layout): an alert sent while the failed run's
    freeze still holds says checkout is closed, read through the shop port, never "open again"
    from stocksync's database, which holds no freeze; a shop that cannot be read makes it unknown."""
    settings = load_settings()
    tag = uuid.uuid4().hex[:8]
    run_id = f"manual__frozen-elsewhere-{tag}"
    shop = open_shop(seeded)
    pipeline.freeze_checkout(stocksync_dsn, run_id=run_id, dag_id="inventory_nightly_sync", settings=settings,
                             shop=shop)
    try:
        (expires,) = [row[5] for row in freeze.active_freezes(shop, set_by=run_id)]
        for reader in (shop, None, open_shop("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")):
            with connect(stocksync_dsn) as conn:
                delivery.queue(conn, settings, delivery.payload(
                    kind=delivery.TASK_FAILED, text="stocksync: failed", dag_id="inventory_nightly_sync",
                    run_id=run_id, task_id="extract_wms_counts", error="WMS unreachable"), queued_by=run_id)
                conn.commit()
            sent = delivery.deliver(stocksync_dsn, settings, run_id=run_id, shop=reader)
            assert [a.delivered for a in sent] == [True]
        closed, unread, unreachable = alerts_for(webhook, run_id)
        assert "Checkout: still closed by this run until" in closed["text"]
        assert closed["checkout_closed_until"] == expires.isoformat()
        for body in (unread, unreachable):  # no freeze table in stocksync's database; a shop that is down
            assert "Checkout: unknown (the shop's freezes could not be read" in body["text"]
            assert body["checkout_closed_until"] is None
    finally:
        freeze.release_freezes(shop, set_by=run_id)


def test_the_watchdog_retries_alerts_when_the_shop_connection_is_unusable(
        dagbag: Any, seeded: str, stocksync_dsn: str, webhook: Any, ops_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop's connection names nothing Airflow knows: the watchdog's shop checks fail (and
    alert), but the undelivered alert is still sent by its retry task, which needs no shop."""
    from airflow.utils.state import TaskInstanceState

    settings = load_settings()
    never_sent = f"manual__shop-gone-{uuid.uuid4().hex[:8]}"
    with connect(stocksync_dsn) as conn:
        (alert_id,) = delivery.queue(conn, settings, delivery.payload(
            kind=delivery.TASK_FAILED, text="stocksync: an alert whose teardown never came",
            dag_id="inventory_full_push", run_id=never_sent, task_id="extract_wms_counts", error="WMS unreachable"),
            queued_by=never_sent)
        conn.commit()
    monkeypatch.setenv("STOCKSYNC_SHOP_CONN_ID", "no_such_connection")

    run = fresh_dag(dagbag, "stocksync_watchdog").test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["retry_alerts"] == TaskInstanceState.SUCCESS
    assert states["reap_dead_runs"] == TaskInstanceState.FAILED  # it does need the shop
    sent = [a for a in alert_rows(stocksync_dsn, never_sent) if a["alert_id"] == alert_id]
    assert (sent[0]["delivered"], sent[0]["attempts"]) == (True, 1)
    assert len(alerts_for(webhook, never_sent)) == 1
