"""The "Stock sync" Airflow plugin on a real `airflow standalone` (API server, UI, scheduler...),
wired to the test shop DB, WMS service and webhook, driven over HTTP and with headless Chromium.

One nightly run is made first with `dag.test()` (in this process, the session's Airflow home);
the standalone gets its own AIRFLOW_HOME but the same shop DB and reports folder, so its plugin
page lists that run and serves its report. Screenshots go to `artifacts/screenshots/`.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlparse

import pytest
import requests

from devstack.airflow_standalone import AirflowStandalone
from devstack.demo_seed import seed_demo
from devstack.local_stack import free_port
from include.stocksync.db import run_key
from tests.conftest import TEST_SETTINGS_ENV, TEST_TOKEN
from tests.integration.browser import SCREENSHOTS, browser_page, sign_in

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class UiStack:
    airflow: AirflowStandalone
    run_id: str
    run_status: str

    @property
    def base(self) -> str:
        return self.airflow.url

    @property
    def report_path(self) -> str:
        return f"/stocksync/reports/{run_key(self.run_id)}/report.html"

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.airflow.token()}"}


@pytest.fixture(scope="module")
def ui(shop_dsn: str, wms_process: Any, webhook: Any, airflow: dict[str, str], dagbag: Any,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiStack]:
    """A standalone Airflow (own home, free port) plus one finished nightly run to show."""
    from include.stocksync.pipeline import get_run

    standalone = AirflowStandalone(
        tmp_path_factory.mktemp("airflow-standalone"), shop_dsn=shop_dsn, wms_url=wms_process.url,
        token=TEST_TOKEN, webhook_url=webhook.url, port=free_port(),
        extra_env={**TEST_SETTINGS_ENV, "STOCKSYNC_REPORTS_DIR": airflow["STOCKSYNC_REPORTS_DIR"]})
    standalone.launch()  # starts in the background while the run below is made
    try:
        wms_process.admin.clear_faults()
        seed_demo(shop_dsn, wms_process.admin, skus=30, seed=2)
        dag_run = dagbag.get_dag("inventory_nightly_sync").test()
        assert str(dag_run.state) == "success", f"the nightly run failed: {dag_run.state}"
        run = get_run(shop_dsn, dag_run.run_id)
        standalone.wait_ready(timeout=120)
        print(f"\nairflow standalone answered health after {standalone.startup_seconds:.1f}s "
              f"(log {standalone.log_path})")
        yield UiStack(standalone, dag_run.run_id, run["status"])
    finally:
        standalone.stop(timeout=5)


def raw_get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET `path` exactly as written: no dot-segment removal or re-quoting (requests would normalise)."""
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def refused(response: requests.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    return response.is_redirect and "/auth/login" in response.headers.get("location", "")


def test_unauthenticated_requests_are_refused(ui: UiStack) -> None:
    for path in ("/stocksync/", ui.report_path):
        for accept in ("application/json", "text/html"):
            response = requests.get(ui.base + path, headers={"Accept": accept}, allow_redirects=False, timeout=10)
            assert refused(response), (path, accept, response.status_code, response.text[:200])
            assert ui.run_id not in response.text
    # a browser is sent to Airflow's login page and back to the page afterwards
    response = requests.get(ui.base + "/stocksync/", headers={"Accept": "text/html"}, allow_redirects=False,
                            timeout=10)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login?next=%2Fstocksync%2F")
    # a forged or foreign token is no login either
    bad = requests.get(ui.base + "/stocksync/", headers={"Authorization": "Bearer not-a-jwt"}, timeout=10)
    assert bad.status_code in (401, 403) and ui.run_id not in bad.text


def test_page_and_report_with_a_token(ui: UiStack) -> None:
    page = requests.get(ui.base + "/stocksync/", headers=ui.bearer(), timeout=10)
    assert page.status_code == 200, page.text[:500]
    assert "Stock sync" in page.text
    assert ui.run_id in page.text and ui.run_status in page.text
    assert "Alerts sent" in page.text
    assert f'href="reports/{run_key(ui.run_id)}/report.html"' in page.text
    assert not any(tag in page.text for tag in ("<script", "<link", "src=", "@import"))  # self-contained

    report = requests.get(ui.base + ui.report_path, headers=ui.bearer(), timeout=10)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert ui.run_id in report.text and "Data quality" in report.text

    # the UI's login cookie is accepted as well as the header
    by_cookie = requests.get(ui.base + ui.report_path, cookies={"_token": ui.airflow.token()}, timeout=10)
    assert by_cookie.status_code == 200 and ui.run_id in by_cookie.text


def run_tab_path(dag_id: str, run_id: str) -> str:
    """The "Sync report" tab's URL as the Airflow UI builds it (encodeURIComponent of both ids)."""
    return f"/stocksync/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def test_run_tab_leads_to_the_runs_report(ui: UiStack) -> None:
    path = run_tab_path("inventory_nightly_sync", ui.run_id)
    for accept in ("application/json", "text/html"):
        response = requests.get(ui.base + path, headers={"Accept": accept}, allow_redirects=False, timeout=10)
        assert refused(response), (accept, response.status_code, response.text[:200])

    response = requests.get(ui.base + path, headers=ui.bearer(), allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.text[:300]
    assert urljoin(ui.base + path, response.headers["location"]) == ui.base + ui.report_path
    report = requests.get(ui.base + path, headers=ui.bearer(), timeout=10)  # follows the redirect
    assert report.status_code == 200 and ui.run_id in report.text and "Data quality" in report.text

    missing = requests.get(ui.base + run_tab_path("some_other_dag", "manual__2026-01-01T00:00:00+00:00"),
                           headers=ui.bearer(), allow_redirects=False, timeout=10)
    assert missing.status_code == 404
    assert "No sync report for this run" in missing.text and "manual__2026-01-01T00:00:00+00:00" in missing.text


def test_report_paths_cannot_leave_the_run_folder(ui: UiStack) -> None:
    key = run_key(ui.run_id)
    attempts = [
        "/stocksync/reports/../../etc/passwd",
        "/stocksync/reports/%2e%2e/%2e%2e/etc/passwd",
        "/stocksync/reports/..%2f..%2fetc%2fpasswd",
        "/stocksync/reports/%2E%2E%2F%2E%2E%2Fetc/passwd",
        f"/stocksync/reports/{key}/../../../../../../etc/passwd",
        f"/stocksync/reports/{key}/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
        f"/stocksync/reports/{key}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"/stocksync/reports/{key}/%2fetc%2fpasswd",
        f"/stocksync/reports/{key}//etc/passwd",
        "/stocksync/reports/ABCDEF0123456789/report.html",
        f"/stocksync/reports/{key}x/report.html",
        f"/stocksync/reports/{key}/",
    ]
    for path in attempts:
        status, body = raw_get(ui.base, path, ui.bearer())
        assert status in (400, 404), (path, status, body[:200])
        assert "root:" not in body


def test_plugin_is_registered_with_its_nav_view(ui: UiStack) -> None:
    response = ui.airflow.api("GET", "/api/v2/plugins")
    assert response.status_code == 200, response.text
    plugins = {p["name"]: p for p in response.json()["plugins"]}
    assert "stocksync" in plugins, list(plugins)
    plugin = plugins["stocksync"]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/stocksync"]
    views = {v["name"]: v for v in plugin["external_views"]}
    assert views["Stock sync"]["href"] == "/stocksync/" and views["Stock sync"]["destination"] == "nav"
    assert views["Sync report"]["href"] == "/stocksync/runs/{DAG_ID}/{RUN_ID}"
    assert views["Sync report"]["destination"] == "dag_run"
    assert requests.get(ui.base + "/api/v2/plugins", timeout=10).status_code == 401


def test_browser_login_page_and_report(ui: UiStack) -> None:
    from playwright.sync_api import expect

    with browser_page(height=900) as page:
        # not logged in: the plugin sends the browser to Airflow's own login page
        page.goto(ui.base + "/stocksync/")
        sign_in(page, ui.airflow)
        page.wait_for_url(ui.base + "/stocksync/")
        expect(page.locator("h1")).to_have_text("Stock sync")
        text = page.inner_text("body")
        assert ui.run_id in text and ui.run_status in text
        assert any(c["name"] == "_token" for c in page.context.cookies())
        page.screenshot(path=str(SCREENSHOTS / "stocksync_page.png"), full_page=True)

        page.get_by_role("link", name=ui.run_id).click()
        page.wait_for_url(f"**{ui.report_path}")
        report_text = page.inner_text("body")
        assert ui.run_id in report_text and "Data quality" in report_text
        page.screenshot(path=str(SCREENSHOTS / "run_report.png"), full_page=True)

        # the Airflow UI with the "Stock sync" entry; the page is embedded at /plugin/stocksync
        page.goto(ui.base + "/plugin/stocksync")
        expect(page.get_by_role("link", name="Stock sync")).to_be_visible()  # the nav entry
        frame = page.frame_locator("iframe")
        expect(frame.locator("h1")).to_have_text("Stock sync")
        expect(frame.get_by_text(ui.run_id)).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "airflow_nav.png"))


# inventory_full_push's params (dag_factory.run_params(ops=True)): name -> (title, part of the description)
FULL_PUSH_PARAMS = {
    "dry_run": ("Dry run", "without touching shop stock"),
    "skus": ("SKUs", "Push only these SKUs"),
    "freeze_mode": ("Freeze mode", "checkout closed for the whole run"),
    "adjustment_mode": ("Adjustment mode", "What to subtract from the WMS figure"),
    "watermark_source": ("Watermark source", "orders_counted_until"),
    "override_guardrails": ("Override guardrails", "Let this run through"),
    "override_reason": ("Override reason", "Required when overriding"),
}


def test_full_push_trigger_form_shows_the_ops_params(ui: UiStack) -> None:
    """The DAG page's "Trigger" dialog renders the ops push's params with their titles, help texts
    and enum choices. Nothing is triggered: the form is never submitted."""
    from playwright.sync_api import expect

    dag_id = "inventory_full_push"
    deadline = time.monotonic() + 60
    while (response := ui.airflow.api("GET", f"/api/v2/dags/{dag_id}")).status_code != 200:
        assert time.monotonic() < deadline, f"{dag_id} not registered: {response.status_code} {response.text[:200]}"
        time.sleep(0.5)

    with browser_page(height=1400) as page:
        page.goto(ui.base + f"/dags/{dag_id}")
        sign_in(page, ui.airflow)
        page.wait_for_url(f"**/dags/{dag_id}")

        page.get_by_test_id("trigger-dag-button").click()  # the "Trigger" button (aria-label "Trigger Dag")
        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_role("heading")).to_have_text(f"Trigger Dag - {dag_id}")
        section = dialog.get_by_role("button", name="Run Parameters")
        if section.get_attribute("aria-expanded") != "true":
            section.click()
        for name, (title, description) in FULL_PUSH_PARAMS.items():
            field = dialog.get_by_role("group").filter(has=page.locator(f"[name=element_{name}]"))
            expect(field).to_have_count(1)
            expect(field.locator("label").first).to_contain_text(title)
            expect(field).to_contain_text(description)
        text = dialog.inner_text()
        assert all(title in text for title, _ in FULL_PUSH_PARAMS.values()), text

        # freeze_mode is a select offering exactly the three modes; the menu is closed again unchosen
        freeze = dialog.get_by_role("combobox", name="Freeze mode")
        freeze.click()
        expect(page.get_by_role("listbox").get_by_role("option")).to_have_text(["full", "apply", "none"])
        dialog.get_by_role("heading").click()
        expect(page.get_by_role("listbox")).to_have_count(0)
        expect(dialog.locator("input[name=element_freeze_mode]")).to_have_value("full")
        # the defaults (a dry run, no override) must be submittable as they are
        expect(dialog.get_by_role("button", name="Trigger", exact=True)).to_be_enabled()

        dialog.locator("[name=element_override_reason]").scroll_into_view_if_needed()
        expect(dialog.locator("[name=element_override_reason]")).to_be_in_viewport()
        page.screenshot(path=str(SCREENSHOTS / "full_push_trigger_form.png"))
