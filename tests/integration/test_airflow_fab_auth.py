"""Per-person logins with DAG-level rights (Airflow's FAB auth manager, `AirflowStandalone(auth="fab")`,
what `scripts/stack.sh --auth fab` starts) and the security headers on Airflow's own pages.

One Airflow (api-server, scheduler, dag-processor, triggerer; its own home and port, shared with
test_incidents.py: tests/integration/conftest.py) with three accounts: erin (admin), alice (ops),
bob (viewer). Each person logs in over the REST API with their own password (`POST /auth/token`);
what they may do is Airflow's answer (200/403), and a run alice triggers names her. The headers
are checked on real responses of the API server: the UI's page, the REST API, FAB's login page,
and the Stock sync page, which keeps its own stricter policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.airflow_standalone import AirflowStandalone, AirflowStandaloneError, wait_for_dags

pytestmark = pytest.mark.slow

PUSH = "inventory_full_push"
NIGHTLY = "inventory_nightly_sync"


@pytest.fixture(scope="module")
def fab(shared_fab_airflow: AirflowStandalone) -> AirflowStandalone:
    """The session's FAB-auth standalone (tests/integration/conftest.py), once it has parsed our DAGs."""
    stack = shared_fab_airflow.launch().wait_ready(timeout=300)  # launch(): again if a module before gave up
    wait_for_dags(stack, {PUSH, NIGHTLY}, timeout=180)
    return stack


def trigger(session: Any, dag_id: str) -> requests.Response:
    return session.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {"dry_run": True}})


def test_each_person_logs_in_with_their_own_password(fab: AirflowStandalone) -> None:
    passwords = fab.passwords
    assert set(passwords) == {"erin", "alice", "bob"} and len(set(passwords.values())) == 3
    for name in passwords:
        assert fab.login(name).api("GET", "/api/v2/dags").status_code == 200
    wrong = requests.post(f"{fab.url}/auth/token", json={"username": "alice", "password": passwords["bob"]},
                          timeout=10)
    assert wrong.status_code in (400, 401), wrong.text[:200]
    with pytest.raises(AirflowStandaloneError):
        fab.login("mallory")
    assert requests.get(f"{fab.url}/api/v2/dags", timeout=10).status_code == 401
    # the passwords file is for this user only
    assert (Path(fab.passwords_file).stat().st_mode & 0o077) == 0


def test_ops_may_trigger_a_push_and_a_viewer_only_reads(fab: AirflowStandalone) -> None:
    alice, bob = fab.login("alice"), fab.login("bob")
    for person in (alice, bob):  # both read the DAG and its runs
        assert person.api("GET", f"/api/v2/dags/{PUSH}").status_code == 200
        assert person.api("GET", f"/api/v2/dags/{PUSH}/dagRuns").status_code == 200
        assert person.api("GET", f"/api/v2/dags/{NIGHTLY}/dagRuns").status_code == 200

    refused = trigger(bob, PUSH)
    assert refused.status_code == 403, refused.text[:300]
    assert bob.api("PATCH", f"/api/v2/dags/{PUSH}", json={"is_paused": False}).status_code == 403

    allowed = trigger(alice, PUSH)
    assert allowed.status_code == 200, allowed.text[:300]
    run = allowed.json()
    assert run["triggering_user_name"] == "alice"  # "triggered by" names the person
    assert bob.api("GET", f"/api/v2/dags/{PUSH}/dagRuns/{run['dag_run_id']}").json()["dag_id"] == PUSH
    # ops may trigger the push DAGs only, not the nightly
    assert trigger(alice, NIGHTLY).status_code == 403


def test_airflow_pages_carry_security_headers(fab: AirflowStandalone) -> None:
    token = fab.login("bob")._token
    responses = {
        "ui": requests.get(f"{fab.url}/", timeout=10),
        "rest": requests.get(f"{fab.url}/api/v2/dags", headers={"Authorization": f"Bearer {token}"}, timeout=10),
        "login": requests.get(f"{fab.url}/auth/login/", timeout=10),
    }
    for name, response in responses.items():
        assert response.status_code == 200, (name, response.status_code)
        assert response.headers.get("X-Content-Type-Options") == "nosniff", name
        assert response.headers.get("X-Frame-Options") == "SAMEORIGIN", name
        policy = directives(response.headers.get("Content-Security-Policy", ""))
        assert policy.get("frame-ancestors") == ["'self'"], name
        assert policy.get("object-src") == ["'none'"], name
    ui = directives(responses["ui"].headers["Content-Security-Policy"])
    assert ui["script-src"] == ["'self'"]  # no inline script, nothing from elsewhere
    assert ui["default-src"] == ["'self'"]
    # the Stock sync page keeps its own, stricter policy (no script at all, sandboxed)
    page = requests.get(f"{fab.url}/stocksync/", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert page.status_code == 200
    own = directives(page.headers["Content-Security-Policy"])
    assert own["default-src"] == ["'none'"] and "sandbox" in own


def test_the_ui_works_under_the_policy_and_shows_our_pages_to_a_viewer(fab: AirflowStandalone) -> None:
    """Chromium signs in on FAB's login page as bob (viewer), opens the Stock sync entry and a DAG's
    code (the Monaco editor: workers, fonts, injected styles); the browser reports no refusal of
    the Content-Security-Policy on the way."""
    from tests.integration.browser import browser_page

    plugins = fab.login("bob").api("GET", "/api/v2/plugins")
    assert plugins.status_code == 200
    views = [v["name"] for p in plugins.json()["plugins"] for v in p.get("external_views", [])]
    assert "Stock sync" in views
    console: list[str] = []
    with browser_page(900) as page:
        page.on("console", lambda message: console.append(message.text))
        page.goto(f"{fab.url}/")
        page.wait_for_url("**/auth/login/**")
        page.locator("input[name=username]").fill("bob")
        page.locator("input[name=password]").fill(fab.passwords["bob"])
        page.locator("input[name=password]").press("Enter")
        page.wait_for_url(lambda url: "/auth/login" not in url)
        page.get_by_role("link", name="Stock sync").first.wait_for()  # our entry in Airflow's navigation
        page.goto(f"{fab.url}/dags/{PUSH}/code")
        page.locator(".monaco-editor").first.wait_for()
        page.get_by_text("build_sync_dag(").first.wait_for()
        page.goto(f"{fab.url}/plugin/stocksync")
        page.frame_locator("iframe").first.get_by_text("Stock sync").first.wait_for()
    refusals = [text for text in console if "Content Security Policy" in text or "Refused to" in text]
    assert refusals == []


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as `{directive: [values]}` (CSP Level 3 syntax)."""
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0].lower()] = words[1:]
    return found
