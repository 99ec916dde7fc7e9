"""The "Stock sync" Airflow plugin on a real `airflow standalone` (API server, UI, scheduler...),
wired to the test shop DB, WMS service and webhook, driven over HTTP and with headless Chromium.

One nightly run is made first with `dag.test()` (in this process, the session's Airflow home);
the standalone (the session's, shared with the ops page and REST tests: tests/integration/conftest.py)
has its own AIRFLOW_HOME but the same shop DB and reports folder, so its plugin page lists that
run and serves its report. Screenshots go to `artifacts/screenshots/`.

The last tests feed a script payload and a right-to-left override through a WMS SKU, the ops
push's parameters and a run id chosen over REST (the standalone allows any run id without `/`),
open every page in Chromium and check that no script runs, the text shows as text and every
response carries the security headers.
"""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlparse

import pytest
import requests

from devstack.airflow_standalone import AirflowStandalone, wait_for_run
from devstack.demo_seed import seed_demo
from include.stocksync.store.db import run_key
from tests.integration.browser import SCREENSHOTS, Watched, browser_page, sign_in, watch

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
def ui(shared_airflow: AirflowStandalone, shop_dsn: str, stocksync_dsn: str, wms_process: Any,
       dagbag: Any) -> UiStack:
    """The session's standalone Airflow (tests/integration/conftest.py) plus one finished nightly run
    to show, made while it boots."""
    from include.stocksync.sync.pipeline import get_run

    wms_process.admin.clear_faults()
    # 200: one odd SKU stays under the 1% limit
    seed_demo(shop_dsn, wms_process.admin, skus=200, seed=2, stocksync_dsn=stocksync_dsn)
    dag_run = dagbag.get_dag("inventory_nightly_sync").test()
    assert str(dag_run.state) == "success", f"the nightly run failed: {dag_run.state}"
    run = get_run(stocksync_dsn, dag_run.run_id)
    shared_airflow.launch().wait_ready(timeout=240)  # launch(): again if a module before gave up
    print(f"\nairflow standalone answered health after {shared_airflow.startup_seconds:.1f}s "
          f"(log {shared_airflow.log_path})")
    return UiStack(shared_airflow, dag_run.run_id, run["status"])


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


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.forms: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag == "form":
            self.forms.append(dict(attrs))


def assert_self_contained(page: str) -> None:
    """No script and nothing loaded from elsewhere (text that merely mentions `src=` is fine); the
    only forms are GET filters that submit to the page itself."""
    elements = Elements()
    elements.feed(page)
    assert not elements.tags & {"script", "link", "img", "iframe", "object", "embed", "base"}, elements.tags
    assert not {"src", "srcset", "formaction"} & elements.attributes
    assert not any(a.startswith("on") for a in elements.attributes)
    assert all(f.get("method") == "get" and not f.get("action") for f in elements.forms), elements.forms
    assert "@import" not in page and "url(" not in page


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
    assert "What happened" in page.text and "Applied: " in page.text
    assert f'href="reports/{run_key(ui.run_id)}/report.html"' in page.text
    assert_self_contained(page.text)

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


# -- hostile text: a WMS SKU, ops parameters and a run id carrying a script and a bidi override --------------

SCRIPT = "<img src=x onerror=alert(1)><script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
RLO = "\u202e"
HOSTILE_SKU = f"{SCRIPT}{RLO}gpj.exe"
# Airflow refuses `/` and `..` in a run id whatever the pattern, so this one has no closing tag
HOSTILE_RUN_ID = f"ops <img src=x onerror=alert(3)><svg onload=alert(4)>{RLO}gpj"
PUSH, NIGHTLY = "inventory_full_push", "inventory_nightly_sync"
INJECTED = "script, img, iframe, [onerror], [onload]"  # what escaped text must never turn into


def shown(text: str) -> str:
    """How a page shows `text`: the override as a marker."""
    return text.replace(RLO, "⟨U+202E⟩")


@dataclass(frozen=True)
class HostileRuns:
    nightly_id: str  # a nightly run whose WMS feed renamed one SKU to HOSTILE_SKU (quarantined)
    push_id: str  # HOSTILE_RUN_ID: an ops dry run, triggered over REST, with SCRIPT as its override reason
    refused_id: str  # an ops push refused at its first task (SKU with a bidi override), reusing nightly_id
    refused_alert: dict[str, Any]  # the failure alert the webhook received for the refused push


def run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"


@pytest.fixture(scope="module")
def hostile(ui: UiStack, stocksync_dsn: str, dagbag: Any, wms_process: Any, webhook: Any) -> HostileRuns:
    from include.stocksync.sync.pipeline import get_run
    from tests.conftest import fresh_dag

    wms_process.admin.faults(sku_rename={"SKU-0000030": HOSTILE_SKU})
    try:
        nightly = fresh_dag(dagbag, NIGHTLY).test(run_conf={"page_size": 100})
    finally:
        wms_process.admin.clear_faults()
    assert str(nightly.state) == "success" and get_run(stocksync_dsn, nightly.run_id)["quarantined"] == 1

    api = ui.airflow
    deadline = time.monotonic() + 60
    while api.api("GET", f"/api/v2/dags/{PUSH}").status_code != 200:
        assert time.monotonic() < deadline, f"{PUSH} not registered"
        time.sleep(0.5)
    assert api.api("PATCH", f"/api/v2/dags/{PUSH}", json={"is_paused": False}).status_code == 200
    triggers = {
        HOSTILE_RUN_ID: {"dry_run": True, "override_guardrails": True, "override_reason": f"stock take {SCRIPT}"},
        nightly.run_id: {"dry_run": True, "skus": [HOSTILE_SKU]},  # refused: not printable; the id is taken
    }
    for run_id, conf in triggers.items():
        response = api.api("POST", f"/api/v2/dags/{PUSH}/dagRuns",
                           json={"dag_run_id": run_id, "logical_date": None, "conf": conf})
        assert response.status_code == 200, response.text
    assert wait_for_run(api, PUSH, HOSTILE_RUN_ID, timeout=300)["state"] == "success"
    assert wait_for_run(api, PUSH, nightly.run_id, timeout=300)["state"] == "failed"
    assert get_run(stocksync_dsn, HOSTILE_RUN_ID)["status"] == "dry_run"
    assert get_run(stocksync_dsn, nightly.run_id)["dag_id"] == NIGHTLY  # the refused push left it alone
    alerts = [e["body"] for e in webhook.received()
              if e["body"].get("run_id") == nightly.run_id and e["body"].get("dag_id") == PUSH]
    assert alerts, "the refused push sent no alert"
    return HostileRuns(nightly.run_id, HOSTILE_RUN_ID, nightly.run_id, alerts[0])


def report_url(base: str, run_id: str, name: str = "report.html") -> str:
    return f"{base}/stocksync/reports/{run_key(run_id)}/{name}"


def assert_secured(url: str, status: int, headers: dict[str, str]) -> None:
    from include.stocksync.ui.pages import CONTENT_SECURITY_POLICY

    headers = {k.lower(): v for k, v in headers.items()}
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, (url, status, headers)
    assert headers.get("x-content-type-options") == "nosniff", (url, status)
    assert headers.get("x-frame-options") == "SAMEORIGIN", (url, status)


def assert_no_script_ran(seen: Watched) -> None:
    assert seen.dialogs == [], seen.dialogs
    assert seen.blocked_scripts() == [], seen.blocked_scripts()  # not even one the browser had to refuse


def test_hostile_text_is_text_on_every_page(ui: UiStack, hostile: HostileRuns) -> None:
    """Runs page, the nightly run's report, the push's report and plan in the "Sync report" tab
    and directly, the refused push's tab and its alert link: no script runs, the payload reads as
    text with the override as a marker, every response of ours carries the security headers."""
    from playwright.sync_api import expect

    def text_of(scope: Any) -> str:
        expect(scope.locator("h1")).to_be_visible()
        assert scope.locator(INJECTED).count() == 0
        return str(scope.locator("body").inner_text())

    def open_tab(dag_id: str, run_id: str) -> Any:
        page.goto(ui.base + run_path(dag_id, run_id))
        page.get_by_text("Sync report", exact=True).click()
        page.wait_for_url("**/plugin/stocksync_report")
        return page.frame_locator("iframe")

    with browser_page(height=1000) as page:
        seen = watch(page)
        page.goto(ui.base + "/stocksync/")
        sign_in(page, ui.airflow)
        page.wait_for_url(ui.base + "/stocksync/")
        text = text_of(page)
        assert shown(hostile.push_id) in text and f"stock take {SCRIPT}" in text
        page.screenshot(path=str(SCREENSHOTS / "hostile_runs_page.png"), full_page=True)

        page.goto(report_url(ui.base, hostile.nightly_id))
        text = text_of(page)
        quarantined = text.split("Quarantined rows", 1)[1].split("Distribution of changes", 1)[0]
        assert shown(HOSTILE_SKU) in quarantined and "⟨U+202E⟩gpj.exe" in quarantined
        page.locator("h2", has_text="Quarantined rows").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "hostile_nightly_report.png"), full_page=True)

        frame = open_tab(PUSH, hostile.push_id)
        expect(frame.locator("#headline")).to_contain_text("Dry run, nothing written")
        text = text_of(frame)
        assert shown(hostile.push_id) in text and f"stock take {SCRIPT}" in text and "dry_run" in text
        page.screenshot(path=str(SCREENSHOTS / "hostile_push_report_tab.png"))
        frame.get_by_role("link", name="plan.html").click()
        expect(frame.locator("h1")).to_contain_text(f"Dry-run plan for {shown(hostile.push_id)}")
        assert "Nothing was written to the shop." in text_of(frame)
        page.screenshot(path=str(SCREENSHOTS / "hostile_push_plan_tab.png"))

        page.goto(report_url(ui.base, hostile.push_id, "plan.html"))
        assert shown(hostile.push_id) in text_of(page)

        frame = open_tab(PUSH, hostile.refused_id)  # the run id is the nightly run's: its report must not show
        expect(frame.locator("h1")).to_have_text("Run refused: no sync report")
        text = text_of(frame)
        assert "freeze_checkout" in text and SCRIPT in text and "cannot be a SKU" in text
        assert NIGHTLY in text and "Quarantined rows" not in text
        page.screenshot(path=str(SCREENSHOTS / "hostile_refused_tab.png"))

        response = page.goto(hostile.refused_alert["report_url"])  # the alert's link: HTML, never JSON
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "Run refused" in text_of(page) and SCRIPT in text_of(page)
        page.screenshot(path=str(SCREENSHOTS / "hostile_refused_alert_link.png"), full_page=True)

    assert_no_script_ran(seen)
    paths = {unquote(urlparse(url).path) for url, _, _ in seen.responses}
    for wanted in ("/stocksync/", f"/stocksync/reports/{run_key(hostile.nightly_id)}/report.html",
                   f"/stocksync/reports/{run_key(hostile.push_id)}/report.html",
                   f"/stocksync/reports/{run_key(hostile.push_id)}/plan.html",
                   f"/stocksync/runs/{PUSH}/{hostile.push_id}", f"/stocksync/runs/{PUSH}/{hostile.refused_id}"):
        assert wanted in paths, (wanted, paths)
    for url, status, headers in seen.responses:
        assert_secured(url, status, headers)


def test_run_page_shows_only_its_own_dags_run(ui: UiStack, hostile: HostileRuns) -> None:
    """Run ids are unique per DAG only: the push refused with the nightly run's id gets the
    refused-run page, never the nightly run's report; the nightly DAG's page leads to it."""
    own = requests.get(ui.base + run_tab_path(NIGHTLY, hostile.nightly_id), headers=ui.bearer(),
                       allow_redirects=False, timeout=10)
    assert own.status_code == 303
    assert urljoin(ui.base + run_tab_path(NIGHTLY, hostile.nightly_id), own.headers["location"]) == \
        report_url(ui.base, hostile.nightly_id)

    for accept in ("application/json", "text/html"):  # an alert's link is HTML for API clients too
        other = requests.get(ui.base + run_tab_path(PUSH, hostile.refused_id), allow_redirects=False, timeout=10,
                             headers={**ui.bearer(), "Accept": accept})
        assert other.status_code == 200 and other.headers["content-type"].startswith("text/html")
        assert "Run refused: no sync report" in other.text and ESCAPED_SCRIPT in other.text
        assert "Quarantined rows" not in other.text and "reports/" not in other.text
        assert_self_contained(other.text)

    # without a login: a browser goes to Airflow's login page, an API client gets 401
    browser = requests.get(ui.base + run_tab_path(PUSH, hostile.refused_id), headers={"Accept": "text/html"},
                           allow_redirects=False, timeout=10)
    assert browser.status_code == 303 and "/auth/login" in browser.headers["location"]
    assert requests.get(ui.base + run_tab_path(PUSH, hostile.refused_id), timeout=10).status_code == 401


def test_every_kind_of_plugin_response_carries_the_security_headers(ui: UiStack, hostile: HostileRuns) -> None:
    html = {"Accept": "text/html"}
    cases = [  # (path, headers, expected status)
        ("/stocksync/", ui.bearer(), 200),
        (ui.report_path, ui.bearer(), 200),
        (f"/stocksync/reports/{run_key(hostile.push_id)}/plan.html", ui.bearer(), 200),
        (f"/stocksync/reports/{run_key(hostile.push_id)}/plan.csv", ui.bearer(), 200),
        (run_tab_path(NIGHTLY, ui.run_id), ui.bearer(), 303),
        (run_tab_path(PUSH, hostile.refused_id), ui.bearer(), 200),
        (run_tab_path("some_other_dag", "manual__2026-01-01T00:00:00+00:00"), ui.bearer(), 404),
        ("/stocksync/reports/0123456789abcdef/report.html", ui.bearer(), 404),
        ("/stocksync/reports/0123456789abcdef/report.html", {**ui.bearer(), **html}, 404),
        ("/stocksync/", {}, 401),
        ("/stocksync/", html, 303),
        ("/stocksync/", {"Authorization": "Bearer not-a-jwt"}, 401),
    ]
    for path, headers, expected in cases:
        response = requests.get(ui.base + path, headers=headers, allow_redirects=False, timeout=10)
        assert response.status_code in ((401, 403) if expected == 401 else (expected,)), (path, response.status_code)
        assert_secured(path, response.status_code, dict(response.headers))
        if "text/html" in headers.get("Accept", "") and response.status_code == 404:
            assert response.headers["content-type"].startswith("text/html") and "<h1>Not found</h1>" in response.text
    csv = requests.get(ui.base + f"/stocksync/reports/{run_key(hostile.push_id)}/plan.csv", headers=ui.bearer(),
                       timeout=10)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("sku,current,")


def test_report_files_are_served_only_for_a_run_record_and_by_name(ui: UiStack, hostile: HostileRuns,
                                                                   airflow: dict[str, str]) -> None:
    """A folder no run record claims is not served, nor any file but report.html, plan.html and
    plan.csv (an older run's GX Data Docs copy shows WMS text raw and loads CDN scripts)."""
    reports = Path(airflow["STOCKSYNC_REPORTS_DIR"])
    orphan = reports / "0123456789abcdef"
    docs = reports / run_key(hostile.nightly_id) / "gx_validation.html"
    orphan.mkdir(mode=0o700, exist_ok=True)
    (orphan / "report.html").write_text("<h1>orphan</h1>")
    docs.write_text("<script src='https://cdn.example/x.js'></script>")
    try:
        for path in ("/stocksync/reports/0123456789abcdef/report.html",
                     f"/stocksync/reports/{run_key(hostile.nightly_id)}/gx_validation.html"):
            response = requests.get(ui.base + path, headers=ui.bearer(), timeout=10)
            assert response.status_code == 404, (path, response.status_code)
            assert "orphan" not in response.text and "cdn.example" not in response.text
    finally:
        docs.unlink()
        (orphan / "report.html").unlink()
        orphan.rmdir()


def test_a_script_in_a_served_page_never_runs(ui: UiStack, hostile: HostileRuns, airflow: dict[str, str]) -> None:
    """Defence in depth: even a page of ours that held a script (a template bug) runs none, at the
    top level or in the Airflow UI's iframe that grants `allow-scripts allow-same-origin`."""
    from playwright.sync_api import expect

    planted = Path(airflow["STOCKSYNC_REPORTS_DIR"]) / run_key(ui.run_id) / "plan.html"
    planted.write_text("<h1>planted</h1><script>parent.document.title='pwned';alert('script')</script>"
                       "<img src=x onerror=\"parent.document.title='pwned';alert('img')\">")
    try:
        with browser_page(height=700) as page:
            seen = watch(page)
            page.goto(ui.base + "/stocksync/")  # the plugin's own redirect to the login page (the SPA's
            sign_in(page, ui.airflow)            # client-side one can abort the navigation being waited for)
            page.wait_for_url(ui.base + "/stocksync/")
            page.goto(ui.base + "/plugin/stocksync")
            frame = page.frame_locator("iframe")
            expect(frame.locator("h1")).to_have_text("Stock sync")
            title = page.title()
            assert page.locator("iframe").get_attribute("sandbox") == \
                "allow-scripts allow-same-origin allow-forms allow-downloads"  # what Airflow 3.3 grants
            page.locator("iframe").evaluate(  # load the planted page in Airflow's own iframe
                f"frame => {{ frame.src = '/stocksync/reports/{run_key(ui.run_id)}/plan.html'; }}")
            expect(frame.locator("h1")).to_have_text("planted")
            page.wait_for_timeout(1000)
            assert page.title() == title
            page.goto(ui.base + f"/stocksync/reports/{run_key(ui.run_id)}/plan.html")
            expect(page.locator("h1")).to_have_text("planted")
            page.wait_for_timeout(1000)
            assert page.title() != "pwned"
        assert seen.dialogs == []
        assert seen.blocked_scripts(), seen.console  # the browser saw the script and refused it
    finally:
        planted.unlink()
