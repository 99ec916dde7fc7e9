"""Failures as incidents and the "compare with the last applied run" view, in headless Chromium
logged in to a real Airflow with the FAB auth manager: alice (ops) and bob (viewer).

The alerts are recorded with the statement the DAGs' notifier uses (`insert_alert_queued.sql`);
the runs compared are real nightly runs through the pipeline's steps on the test WMS. Expected
figures come from SQL written here, on the run records and their audit rows.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from devstack.airflow_standalone import AirflowStandalone
from include.stocksync.store.db import connect, execute_file
from tests.conftest import SplitDatabases, shop_in_line_with_wms
from tests.integration.browser import SCREENSHOTS, browser_page
from tests.integration.test_ops_pages import _drift, _pipeline_run

pytestmark = pytest.mark.slow

NIGHTLY = "inventory_nightly_sync"
HOSTILE_NOTE = "<b>restarted</b> the WMS & <script>alert(1)</script> — ticket OPS-7"


@pytest.fixture(scope="module")
def fab(shared_fab_airflow: AirflowStandalone, clean_shop: str, airflow: Any) -> AirflowStandalone:
    """The session's FAB-auth standalone (tests/integration/conftest.py), over the databases
    `clean_shop` emptied."""
    return shared_fab_airflow.launch().wait_ready(timeout=300)  # launch(): again if a module before gave up


@pytest.fixture(scope="module")
def clean_shop(split_databases: SplitDatabases) -> str:  # module scope: the Airflow above reads these databases
    from devstack.demo_seed import reset_history, reset_shop

    with connect(split_databases.shop) as conn:
        reset_shop(conn)
        conn.commit()
    with connect(split_databases.stocksync) as conn:
        reset_history(conn)
        conn.execute("DELETE FROM stocksync.incident_acks")
        conn.commit()
    return split_databases.shop


def record_alert(dsn: str, run_id: str, error: str, *, task_id: str = "extract", channel: str = "webhook",
                 sent_at: datetime | None = None) -> None:
    with connect(dsn) as conn:
        execute_file(conn, "stocksync/insert_alert_queued", {
            "run_id": run_id, "dag_id": NIGHTLY, "task_id": task_id, "try_number": 1, "target": "test",
            "delivery_error": None, "error": error, "kind": "task_failed", "channel": channel, "payload": "{}",
            "subject": None, "queued_by": run_id})
        if sent_at is not None:
            conn.execute("UPDATE stocksync.alerts SET sent_at = %(at)s WHERE run_id = %(run_id)s",
                         {"at": sent_at, "run_id": run_id})
        conn.commit()


def log_in(page: Any, fab: AirflowStandalone, who: str) -> None:
    page.goto(f"{fab.url}/stocksync/incidents")
    page.wait_for_url("**/auth/login/**")
    page.locator("input[name=username]").fill(who)
    page.locator("input[name=password]").fill(fab.passwords[who])
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url("**/stocksync/incidents**")


def incident_row(page: Any, run_id: str) -> Any:
    return page.locator("table.incidents tr", has=page.locator(f"a[title='{run_id}']"))


def test_three_failures_of_one_cause_are_one_incident_acknowledged_by_the_logged_in_person(
        fab: AirflowStandalone, clean_shop: str, stocksync_dsn: str) -> None:
    now = datetime.now(timezone.utc)
    # one cause on three nights: different run ids, times, counts and SKU; the first copied to the chat channel
    runs = [f"scheduled__{(now - timedelta(days=d)).date()}T01:30:00+00:00" for d in (3, 2, 1)]
    for n, run_id in enumerate(runs):
        error = (f"extract of run {run_id} failed: WMS answered 503 after {n + 3} tries at "
                 f"{(now - timedelta(days=3 - n)).isoformat()} while reading 'SKU-00004{n}'")
        record_alert(stocksync_dsn, run_id, error, sent_at=now - timedelta(days=3 - n))
        if n == 0:
            record_alert(stocksync_dsn, run_id, error, channel="chat", sent_at=now - timedelta(days=3))
    other = "manual__other-cause"
    record_alert(stocksync_dsn, other, "freeze_checkout failed: shop database refused the connection",
                 task_id="freeze_checkout", sent_at=now - timedelta(hours=5))

    with browser_page(900) as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, fab, "alice")
        row = incident_row(page, runs[0])
        assert row.count() == 1
        assert row.locator("td.count").inner_text().strip() == "3"
        assert sorted(a.get_attribute("title") for a in row.locator("a[title]").all()) == sorted(runs)
        assert "open" in row.locator(".badge").first.inner_text()
        assert incident_row(page, other).locator("td.count").inner_text().strip() == "1"
        page.screenshot(path=str(SCREENSHOTS / "incidents_open_1366.png"), full_page=True)

        row.locator("textarea[name=note]").fill(HOSTILE_NOTE)
        row.get_by_role("button", name="Acknowledge").click()
        page.wait_for_url("**/stocksync/incidents**")
        row = incident_row(page, runs[0])
        assert "acknowledged" in row.locator(".badge").first.inner_text()
        assert row.locator(".ack-by").inner_text() == "alice"
        assert row.locator(".ack-note").inner_text() == HOSTILE_NOTE  # shown as text, not markup
        assert row.locator(".ack-note b, .ack-note script").count() == 0
        page.screenshot(path=str(SCREENSHOTS / "incidents_1366.png"), full_page=True)

    with connect(stocksync_dsn) as conn:
        acks = conn.execute("SELECT acknowledged_by, note, acknowledged_at FROM stocksync.incident_acks").fetchall()
    assert [(a[0], a[1]) for a in acks] == [("alice", HOSTILE_NOTE)]
    assert abs((acks[0][2] - datetime.now(timezone.utc)).total_seconds()) < 600

    # the same cause again: the incident is open again, its count 4
    record_alert(stocksync_dsn, "scheduled__again", "extract of run scheduled__again failed: WMS answered 503 after "
                 "9 tries at 2030-01-01T00:00:00Z while reading 'SKU-000099'")
    with browser_page(900) as page:
        log_in(page, fab, "alice")
        row = incident_row(page, runs[0])
        assert row.locator("td.count").inner_text().strip() == "4"
        assert "open" in row.locator(".badge").first.inner_text()


def test_a_viewer_cannot_acknowledge(fab: AirflowStandalone, clean_shop: str, stocksync_dsn: str) -> None:
    record_alert(stocksync_dsn, "manual__viewer-case", "drift check failed: 12 SKUs differ")
    with browser_page(900) as page:
        log_in(page, fab, "bob")
        row = incident_row(page, "manual__viewer-case")
        assert row.locator("form.ack").count() == 0
        fingerprint = row.get_attribute("data-fingerprint")
    token = fab.login("bob")._token
    refused = requests.post(f"{fab.url}/stocksync/incidents/{fingerprint}/acknowledge",
                            data={"note": "not mine to acknowledge"},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert refused.status_code == 403 and "ops role" in refused.text, refused.text[:300]
    # and alice from another site (a form riding her cookie) is refused too
    alice = fab.login("alice")._token
    cross = requests.post(f"{fab.url}/stocksync/incidents/{fingerprint}/acknowledge",
                          data={"note": "forged"}, timeout=10,
                          headers={"Cookie": f"_token={alice}", "Origin": "https://evil.example"})
    assert cross.status_code == 403, cross.text[:300]
    with connect(stocksync_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.incident_acks WHERE fingerprint = %s",
                            (fingerprint,)).fetchone()[0] == 0


def test_odd_addresses_and_forms_get_a_4xx_never_a_broken_page(fab: AirflowStandalone, clean_shop: str,
                                                                stocksync_dsn: str) -> None:
    """An acknowledgement claiming to have seen the incident until year 1 (+14:00: before year 1 in
    UTC) is kept within what the incident spans: stored as given, it made the incidents page and
    every later acknowledgement fail for everyone (503). A NUL in a path segment or a query value is
    a bad request, not "the shop database is unreachable"; a filter date of 9999-12-31 is a filter
    problem said on the page."""
    record_alert(stocksync_dsn, "manual__year-one", "drift check failed: 7 SKUs differ",
                 sent_at=datetime.now(timezone.utc) - timedelta(hours=2))
    alice = {"Authorization": f"Bearer {fab.login('alice')._token}"}
    page = requests.get(f"{fab.url}/stocksync/incidents", headers=alice, timeout=30)
    fingerprint = re.search(r'data-fingerprint="([0-9a-f]+)"', page.text)
    assert page.status_code == 200 and fingerprint, page.text[:300]
    posted = requests.post(f"{fab.url}/stocksync/incidents/{fingerprint.group(1)}/acknowledge", headers=alice,
                           data={"note": "seen", "seen_until": "0001-01-01T00:00:00+14:00"}, timeout=30,
                           allow_redirects=False)
    assert posted.status_code == 303, posted.text[:300]
    assert requests.get(f"{fab.url}/stocksync/incidents", headers=alice, timeout=30).status_code == 200
    with connect(stocksync_dsn) as conn:
        (seen_until,) = conn.execute("SELECT seen_until FROM stocksync.incident_acks WHERE fingerprint = %s",
                                     (fingerprint.group(1),)).fetchone()
    # clamped to the incident's first occurrence, two hours ago
    assert datetime.now(timezone.utc) - timedelta(hours=3) < seen_until < datetime.now(timezone.utc)
    for path in ("/stocksync/runs/inventory_nightly_sync/a%00b", "/stocksync/runs/a%00b/r/compare",
                 "/stocksync/runs/inventory_nightly_sync/r/plan?sku=a%00"):
        assert requests.get(f"{fab.url}{path}", headers=alice, timeout=30).status_code == 400, path
    until = requests.get(f"{fab.url}/stocksync/?until=9999-12-31", headers=alice, timeout=30)
    assert until.status_code == 200 and "until must be a date from 2000 to 2999" in until.text


FIGURES_SQL = """
SELECT r.status,
       count(a.*) FILTER (WHERE a.outcome IN ('changed', 'clamped') AND a.new_qty <> coalesce(a.old_qty, -1)),
       coalesce(sum(a.new_qty - coalesce(a.old_qty, 0)) FILTER (
           WHERE a.outcome IN ('changed', 'clamped') AND a.new_qty > coalesce(a.old_qty, 0)), 0),
       coalesce(sum(coalesce(a.old_qty, 0) - a.new_qty) FILTER (
           WHERE a.outcome IN ('changed', 'clamped') AND a.new_qty < coalesce(a.old_qty, 0)), 0),
       r.quarantined, r.extracted, r.unchanged
  FROM stocksync.sync_runs r LEFT JOIN stocksync.sku_audit a ON a.run_id = r.run_id
 WHERE r.run_id = %s GROUP BY r.run_id
"""


def test_compare_view_shows_both_run_records(fab: AirflowStandalone, clean_shop: str,
                                             split_databases: SplitDatabases, wms_process: Any) -> None:
    shop_in_line_with_wms(clean_shop, wms_process, 80, 25, drift_share=0.3)
    first, second = "manual__compare-first", "manual__compare-second"
    assert _pipeline_run(split_databases, wms_process, first) == "applied"
    _drift(wms_process, random.Random(25), 6)
    assert _pipeline_run(split_databases, wms_process, second) == "applied"
    with connect(split_databases.stocksync) as conn:
        expected = {run: conn.execute(FIGURES_SQL, (run,)).fetchone() for run in (first, second)}
    labels = ("SKUs changed", "Units up", "Units down", "Rows quarantined", "Rows extracted", "SKUs unchanged")

    with browser_page(900) as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, fab, "bob")
        page.goto(f"{fab.url}/stocksync/")
        page.locator("a.compare").first.click()  # newest run first: the second
        page.wait_for_url("**/compare")
        assert second in page.locator("h1").inner_text()
        for i, label in enumerate(labels, start=1):
            cells = page.locator(f"tr[data-figure='{label}'] td")
            this, before = int(cells.nth(0).inner_text() or 0), int(cells.nth(1).inner_text() or 0)
            assert (this, before) == (expected[second][i] or 0, expected[first][i] or 0), label
            difference = cells.nth(2).inner_text().strip()
            assert int(difference or 0) == this - before, label
        page.screenshot(path=str(SCREENSHOTS / "compare_1366.png"), full_page=True)
