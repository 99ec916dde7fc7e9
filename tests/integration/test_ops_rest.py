"""Ops on a running Airflow (`airflow standalone`, LocalExecutor): trigger `inventory_full_push`
through the REST API with a token, dry run then a real run on a SKU subset; invalid conf is
refused; the nightly sync and the push never run their writes at the same time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from devstack.airflow_standalone import AirflowStandalone, wait_for_dags, wait_for_run
from include.stocksync.sync import pipeline
from tests.conftest import active_freezes, shop_in_line_with_wms, stock_fingerprint
from tests.integration.browser import SCREENSHOTS, browser_page, sign_in

pytestmark = pytest.mark.slow

PUSH = "inventory_full_push"
NIGHTLY = "inventory_nightly_sync"


@pytest.fixture(scope="module")
def airflow_api(shared_airflow: AirflowStandalone) -> Iterator[AirflowStandalone]:
    """The session's standalone Airflow (tests/integration/conftest.py), the push unpaused; on the
    way out the nightly is paused again and no run of either DAG is left queued or running."""
    standalone = shared_airflow.launch().wait_ready(timeout=240)  # launch(): again if a module before gave up
    wait_for_dags(standalone, {PUSH, NIGHTLY})
    # new DAGs start paused; the nightly one stays paused (unpausing it would run its latest
    # 02:30 slot at once) until the test that needs it
    unpause(standalone, PUSH)
    yield standalone
    assert standalone.api("PATCH", f"/api/v2/dags/{NIGHTLY}", json={"is_paused": True}).status_code == 200
    for dag_id in (NIGHTLY, PUSH):
        for run in standalone.api("GET", f"/api/v2/dags/{dag_id}/dagRuns").json()["dag_runs"]:
            if run["state"] not in ("success", "failed"):
                wait_for_run(standalone, dag_id, run["dag_run_id"])


@pytest.fixture
def drifted_shop(clean_shop: str, wms: Any) -> str:
    return shop_in_line_with_wms(clean_shop, wms, 40, 41, drift_share=0.5)


def unpause(api: AirflowStandalone, dag_id: str) -> None:
    response = api.api("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})
    assert response.status_code == 200, response.text


def trigger(api: AirflowStandalone, dag_id: str, conf: dict[str, Any]) -> Any:
    return api.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})


def test_dry_run_then_real_push_of_a_subset_over_rest(airflow_api: AirflowStandalone, drifted_shop: str,
                                                      stocksync_dsn: str, wms: Any) -> None:
    before = {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)}
    available = {item["sku"]: item["available"] for item in wms.admin.items()}

    dry = trigger(airflow_api, PUSH, {"dry_run": True})
    assert dry.status_code == 200, dry.text
    dry_run = wait_for_run(airflow_api, PUSH, dry.json()["dag_run_id"])
    assert dry_run["state"] == "success"
    assert {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)} == before
    record = pipeline.get_run(stocksync_dsn, dry.json()["dag_run_id"])
    assert record["status"] == "dry_run"
    assert (Path(record["report_path"]).parent / "plan.csv").exists()
    see_the_plan_from_the_runs_page(airflow_api, dry.json()["dag_run_id"])

    listed = sorted(sku for sku in before if before[sku] != available[sku])[:2]
    real = trigger(airflow_api, PUSH, {"dry_run": False, "skus": listed, "freeze_mode": "apply"})
    assert real.status_code == 200, real.text
    real_run = wait_for_run(airflow_api, PUSH, real.json()["dag_run_id"])
    assert real_run["state"] == "success"
    after = {sku: qty for sku, qty, _, _ in stock_fingerprint(drifted_shop)}
    assert {sku for sku in after if after[sku] != before[sku]} == set(listed)
    record = pipeline.get_run(stocksync_dsn, real.json()["dag_run_id"])
    assert record["triggered_by"] == airflow_api.username
    assert active_freezes(drifted_shop) == []


def see_the_plan_from_the_runs_page(api: AirflowStandalone, run_id: str) -> None:
    """Headless Chromium, logged in: the dry run's page in the Airflow UI has a "Sync report" tab
    showing its report, which links the plan."""
    from playwright.sync_api import expect

    with browser_page(height=1000) as page:
        page.goto(f"{api.url}/dags/{PUSH}/runs/{quote(run_id, safe='')}")
        sign_in(page, api)
        page.wait_for_url(f"**/dags/{PUSH}/runs/**")
        page.get_by_text("Sync report", exact=True).click()  # the run page's tab from the plugin
        page.wait_for_url("**/plugin/stocksync_report")
        frame = page.frame_locator("iframe")
        expect(frame.get_by_text(run_id).first).to_be_visible()
        expect(frame.get_by_text("dry_run").first).to_be_visible()
        frame.get_by_role("link", name="plan.html").click()
        expect(frame.locator("h1")).to_contain_text(f"Dry-run plan for {run_id}")
        expect(frame.get_by_text("Nothing was written to the shop.")).to_be_visible()
        expect(frame.get_by_role("columnheader", name="WMS available")).to_be_visible()  # plain words
        page.screenshot(path=str(SCREENSHOTS / "dry_run_plan_from_run_page.png"))


def test_unknown_enum_value_is_refused(airflow_api: AirflowStandalone) -> None:
    response = trigger(airflow_api, PUSH, {"dry_run": True, "freeze_mode": "sometimes"})
    assert response.status_code == 400, response.text
    assert "freeze_mode" in response.text and "sometimes" in response.text


def test_override_without_reason_fails_fast(airflow_api: AirflowStandalone, drifted_shop: str) -> None:
    fingerprint = stock_fingerprint(drifted_shop)
    response = trigger(airflow_api, PUSH, {"dry_run": False, "override_guardrails": True})
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    assert wait_for_run(airflow_api, PUSH, run_id)["state"] == "failed"
    tis = airflow_api.api("GET", f"/api/v2/dags/{PUSH}/dagRuns/{run_id}/taskInstances").json()["task_instances"]
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert states["freeze_checkout"] == "failed" and states["extract_wms_counts"] != "success"
    log = airflow_api.api("GET", f"/api/v2/dags/{PUSH}/dagRuns/{run_id}/taskInstances/freeze_checkout/logs/1",
                          headers={"Accept": "application/json"})
    assert "override_reason is empty" in log.text
    assert stock_fingerprint(drifted_shop) == fingerprint


def _window(api: AirflowStandalone, dag_id: str, run_id: str) -> tuple[datetime, datetime]:
    ti = api.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/load_stock").json()
    assert ti["pool"] == "stocksync_shop_writer" and ti["state"] == "success"
    return datetime.fromisoformat(ti["start_date"]), datetime.fromisoformat(ti["end_date"])


def test_nightly_and_push_never_write_at_the_same_time(airflow_api: AirflowStandalone, drifted_shop: str) -> None:
    unpause(airflow_api, NIGHTLY)
    nightly = trigger(airflow_api, NIGHTLY, {"freeze_mode": "none"})
    pushed = trigger(airflow_api, PUSH, {"dry_run": False, "freeze_mode": "none"})
    assert nightly.status_code == 200 and pushed.status_code == 200, (nightly.text, pushed.text)
    runs = [(NIGHTLY, nightly.json()["dag_run_id"]), (PUSH, pushed.json()["dag_run_id"])]
    for dag_id, run_id in runs:
        assert wait_for_run(airflow_api, dag_id, run_id)["state"] == "success"
    (a_start, a_end), (b_start, b_end) = (_window(airflow_api, d, r) for d, r in runs)
    assert a_end <= b_start or b_end <= a_start, f"load_stock windows overlap: {(a_start, a_end)} {(b_start, b_end)}"
    pool = airflow_api.api("GET", "/api/v2/pools/stocksync_shop_writer").json()
    assert pool["slots"] == 1
