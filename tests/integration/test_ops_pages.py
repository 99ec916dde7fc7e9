"""Ops at a glance: the run reports and the "Stock sync" page as an operations person
opens them the morning after, in headless Chromium at 1366 and 1920 px, logged in to a real
`airflow standalone`.

The module makes one history, for real: a month of nightly runs through the pipeline's own steps
(what the DAG's tasks call) on the test WMS, with quiet nights, one night of unusual drift, one the
WMS could not be reached, one with a bad feed, one stopped by a guardrail and a few ops pushes,
moved back night by night (started_at and the drift history's night, nothing else); then this
morning's runs through the real DAGs with `dag.test()`: a successful nightly, an ops dry run that a
guardrail would stop, a nightly stopped by that guardrail and one that failed in extract; and an
ops push triggered over REST on the standalone that its first task refuses (so its Airflow run,
its task log and its alert link are real; the standalone is the session's, shared with the UI and
REST tests). The availability service's counters are the service's
own `Period` rows written through its SQL. Times are shown in Europe/Berlin
(`[api] default_ui_timezone`), UTC on hover.

Each page is checked for its headline, for no horizontal scrolling at either width
(`scrollWidth <= innerWidth`, also inside Airflow's iframe) and for its charts (SVG with a
non-zero size); screenshots go to `artifacts/screenshots/ops_*.png`.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin
from zoneinfo import ZoneInfo

import pytest

from devstack.airflow_standalone import AirflowStandalone, wait_for_run
from devstack.demo_seed import seed_demo
from include.stocksync.store.db import connect, execute_file, run_key
from tests.conftest import TEST_TOKEN, SplitDatabases, fresh_dag
from tests.integration.browser import SCREENSHOTS, browser_page, sign_in, watch
from tests.integration.loop_helpers import intraday, wms_post

pytestmark = pytest.mark.slow

NIGHTLY, PUSH = "inventory_nightly_sync", "inventory_full_push"
ZONE = "Europe/Berlin"
SKUS = 200
ZEROED = [f"SKU-{n:07d}" for n in range(1, 16)]  # 15 of 200 = 7.5%: above max_zeroed_share (5%)
WIDTHS = (1366, 1920)
HISTORY_NIGHTS = 29
ODD_NIGHT = 12  # nights ago: far more drift than any other night
EXTRACT_FAILED_NIGHT, BAD_FEED_NIGHT, GUARDRAIL_NIGHT = 20, 8, 5
REFUSED_CONF = {"dry_run": False, "override_guardrails": True}  # an override without its reason
# the longest reason a run takes, with a pasted link that has no place to break (it once made the page
# 51,642 px wide)
LONG_REASON = ("stock take: aisle 1 written off after a leak, ticket https://tickets.example/ops/" + "x" * 420
               + " " + "checked twice by the night shift " * 40)[:1000]


@dataclass(frozen=True)
class Ops:
    airflow: AirflowStandalone
    applied: str       # this morning's successful nightly
    dry_run: str       # an ops dry run a guardrail would stop
    stopped: str       # a nightly stopped by that guardrail
    extract: str       # a nightly that failed in extract
    refused: str       # an ops push its first task refused (triggered over REST on the standalone)
    runs: int          # runs the page lists
    rerun: str = ""    # the nightly run again right after `applied`: the same night, nothing left to change
    push: str = ""     # an ops push of one SKU the WMS received 50 more of
    intraday: str = ""  # an intraday run after the WMS wrote 10 off one SKU
    # run id -> (SKUs changed, units up, units down): from the shop's stock before and after each run
    # (for the dry run: the shop's stock of the SKUs it would zero), never from our own code
    moved: dict[str, tuple[int, int, int]] | None = None

    @property
    def base(self) -> str:
        return self.airflow.url


# ------------------------------------------------------------------------------------------- making it

def _pipeline_run(db: SplitDatabases, wms: Any, run_id: str, *, dag_id: str = NIGHTLY,
                  conf: dict[str, Any] | None = None, triggered_by: str = "scheduler") -> str:
    """One run through the pipeline's steps (what the DAG's tasks call), failures recorded as the
    tasks record them; the teardown always runs. Returns the final status."""
    import requests

    from include.stocksync.config.settings import load_settings, run_options
    from include.stocksync.sync import pipeline

    settings = load_settings()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    dsn, shop = db.stocksync, db.shop_port()
    try:
        pipeline.freeze_checkout(dsn, run_id=run_id, dag_id=dag_id, settings=settings, triggered_by=triggered_by,
                                 options=run_options(conf or {}, ops=dag_id == PUSH), shop=shop)
        pipeline.extract(dsn, run_id=run_id, session=session, base_url=wms.url, shop=shop)
        pipeline.validate(dsn, run_id=run_id, shop=shop)
        plan = pipeline.merge(dsn, run_id=run_id, shop=shop)
        pipeline.load_stock(dsn, run_id=run_id, plan_table=plan.plan_table, shop=shop)
    except Exception:  # noqa: BLE001 - recorded on the run by its step, as in a task
        pass
    finally:
        result = pipeline.release_freeze(dsn, run_id=run_id, dag_id=dag_id, shop=shop)
    return str(result["status"])


def _drift(wms: Any, rng: random.Random, count: int) -> None:
    """The WMS moves `count` SKUs (goods received, damaged, counted): what the next nightly corrects."""
    items = rng.sample(wms.admin.items(), count)
    wms.admin.set_items([{"sku": i["sku"], "on_hand": max(int(i["non_usable"]) + int(i["allocated"]),
                                                           int(i["on_hand"]) + rng.choice((-1, 1)) * rng.randint(1, 9))}
                         for i in items])


def _back_date(dsn: str, run_id: str, days: int) -> None:
    """Move a run `days` nights back: its times, its drift night, its alerts (stocksync's database)."""
    with connect(dsn) as conn:
        shift = {"run_id": run_id, "days": days}
        conn.execute("UPDATE stocksync.sync_runs SET started_at = started_at - make_interval(days => %(days)s), "
                     "finished_at = finished_at - make_interval(days => %(days)s), "
                     "closed_at = closed_at - make_interval(days => %(days)s), "
                     "heartbeat_at = heartbeat_at - make_interval(days => %(days)s) WHERE run_id = %(run_id)s", shift)
        conn.execute("UPDATE stocksync.drift_history SET night = night - %(days)s, "
                     "recorded_at = recorded_at - make_interval(days => %(days)s) WHERE run_id = %(run_id)s", shift)
        conn.execute("UPDATE stocksync.alerts SET sent_at = sent_at - make_interval(days => %(days)s) "
                     "WHERE run_id = %(run_id)s", shift)
        conn.commit()


def make_history(db: SplitDatabases, wms: Any) -> int:
    """A month of nightly runs and a few ops pushes, moved back night by night. Returns how many."""
    rng = random.Random(15)
    made = 0
    for night in range(HISTORY_NIGHTS, 0, -1):
        wms.admin.clear_faults()
        saved = None
        if night == EXTRACT_FAILED_NIGHT:
            wms.admin.faults(fail_status=503, fail_count=-1)
        elif night == BAD_FEED_NIGHT:
            wms.admin.faults(corrupt=[{"sku": "SKU-0000042", "field": "available", "value": -7}])
        elif night == GUARDRAIL_NIGHT:
            saved = wms.admin.items(ZEROED)
            wms.admin.set_items([{"sku": s, "on_hand": 0, "non_usable": 0, "allocated": 0} for s in ZEROED])
        else:
            _drift(wms, rng, 45 if night == ODD_NIGHT else rng.randint(2, 7))
        run_id = f"scheduled__night-{night:02d}"
        _pipeline_run(db, wms, run_id)
        _back_date(db.stocksync, run_id, night)
        made += 1
        if night == GUARDRAIL_NIGHT:  # ops look at it in the morning: a dry run, then an override
            for n, conf in enumerate(({"dry_run": True},
                                      {"dry_run": False, "override_guardrails": True, "override_reason": LONG_REASON})):
                push_id = f"manual__night-{night:02d}-push-{n}"
                _pipeline_run(db, wms, push_id, dag_id=PUSH, conf=conf, triggered_by="ops.anna")
                _back_date(db.stocksync, push_id, night - 1)
                made += 1
            assert saved is not None
            wms.admin.set_items([{k: i[k] for k in ("sku", "on_hand", "non_usable", "allocated")} for i in saved])
        if night in (26, 17, 11, 3):  # a quiet preview now and then
            push_id = f"manual__night-{night:02d}-preview"
            _pipeline_run(db, wms, push_id, dag_id=PUSH, conf={"dry_run": True}, triggered_by="ops.ben")
            _back_date(db.stocksync, push_id, night)
            made += 1
    wms.admin.clear_faults()
    return made


def stock(dsn: str) -> dict[str, int]:
    with connect(dsn) as conn:
        return {sku: int(qty) for sku, qty in conn.execute("SELECT sku, qty FROM shop.stock")}


def diff(before: dict[str, int], after: dict[str, int]) -> tuple[int, int, int]:
    """(SKUs whose stock moved, units up, units down) between two readings of shop.stock."""
    deltas = [after[s] - before.get(s, 0) for s in after if after[s] != before.get(s, 0)]
    return len(deltas), sum(d for d in deltas if d > 0), -sum(d for d in deltas if d < 0)


def write_availability(dsn: str) -> None:
    """24 hours of the availability service's counters, written as its workers write them (in
    stocksync's database)."""
    from include.stocksync.availability.metrics import Period

    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    with connect(dsn) as conn:
        conn.execute("TRUNCATE stocksync.availability_stats")
        for hours_ago in range(23, -1, -1):
            for worker in ("web-1:101", "web-2:102"):
                started = now - timedelta(hours=hours_ago, minutes=59)
                period = Period(started=started)
                for _ in range(rng.randint(40, 90) if 7 < (now - timedelta(hours=hours_ago)).hour < 23 else 8):
                    roll = rng.random()
                    result, cause = (("unknown", "db_timeout") if roll < 0.02 else ("unknown", "unmapped_options")
                                     if roll < 0.05 else ("unavailable", "no_stock") if roll < 0.15
                                     else ("available", "in_stock"))
                    period.add(result, cause, rng.choice((0.8, 1.5, 3.0, 4.0, 9.0, 30.0)), None, None)
                execute_file(conn, "availability/insert_stats", period.row(worker, started + timedelta(minutes=58)))
        conn.commit()


@pytest.fixture(scope="module")
def ops(shared_airflow: AirflowStandalone, split_databases: SplitDatabases, wms_process: Any,
        dagbag: Any) -> Iterator[Ops]:
    """The history, this morning's runs and the session's standalone Airflow showing them
    (tests/integration/conftest.py: it boots while the runs below are made), times in Europe/Berlin."""
    from include.stocksync.sync.pipeline import get_run

    standalone = shared_airflow
    shop_dsn, store = split_databases.shop, split_databases.stocksync
    assert standalone.env["AIRFLOW__API__DEFAULT_UI_TIMEZONE"] == ZONE, "the shared standalone shows another zone"
    saved_zone = os.environ.get("AIRFLOW__API__DEFAULT_UI_TIMEZONE")
    os.environ["AIRFLOW__API__DEFAULT_UI_TIMEZONE"] = ZONE
    saved_base = os.environ.get("AIRFLOW__API__BASE_URL")
    os.environ["AIRFLOW__API__BASE_URL"] = standalone.url  # reports and alerts made here link this Airflow
    try:
        wms = wms_process
        wms.admin.clear_faults()
        seed_demo(shop_dsn, wms.admin, skus=SKUS, seed=15, stocksync_dsn=store)
        with connect(store) as conn:  # alerts of other modules' runs would list as refused runs here
            conn.execute("TRUNCATE stocksync.alerts")
            conn.commit()
        made = make_history(split_databases, wms)
        write_availability(store)

        # this morning
        moved: dict[str, tuple[int, int, int]] = {}
        _drift(wms, random.Random(23), 8)
        before = stock(shop_dsn)
        applied = fresh_dag(dagbag, NIGHTLY).test()
        moved[applied.run_id] = diff(before, after := stock(shop_dsn))
        rerun = fresh_dag(dagbag, NIGHTLY).test()  # someone runs it again: the shop already matches
        moved[rerun.run_id] = diff(after, stock(shop_dsn))
        saved = wms.admin.items(ZEROED)
        wms.admin.set_items([{"sku": s, "on_hand": 0, "non_usable": 0, "allocated": 0} for s in ZEROED])
        shop_now = stock(shop_dsn)
        moved["dry_run"] = (len(ZEROED), 0, sum(shop_now[s] for s in ZEROED))  # what zeroing them would take
        dry_run = fresh_dag(dagbag, PUSH).test(run_conf={"dry_run": True})
        moved[dry_run.run_id] = moved.pop("dry_run")
        stopped = fresh_dag(dagbag, NIGHTLY).test()
        wms.admin.set_items([{k: i[k] for k in ("sku", "on_hand", "non_usable", "allocated")} for i in saved])
        wms.admin.faults(fail_status=503, fail_count=-1)
        try:
            extract = fresh_dag(dagbag, NIGHTLY).test()
        finally:
            wms.admin.clear_faults()
        # an ops push of one SKU the WMS received 50 more of, then an intraday run after a write-off of 10
        got, lost = [i["sku"] for i in wms.admin.items() if i["sku"] not in ZEROED and int(i["available"]) >= 20][:2]
        item = wms.admin.items([got])[0]
        wms.admin.set_items([{"sku": got, "on_hand": int(item["on_hand"]) + 50}])
        before = stock(shop_dsn)
        push = fresh_dag(dagbag, PUSH).test(run_conf={"dry_run": False, "skus": [got]})
        moved[push.run_id] = diff(before, stock(shop_dsn))
        wms_post(wms, "/_admin/adjust", {"items": [{"sku": lost, "on_hand": -10}]})
        before = stock(shop_dsn)
        intraday_id = "scheduled__intraday-this-morning"
        intraday(shop_dsn, wms, intraday_id, store=store)
        moved[intraday_id] = diff(before, stock(shop_dsn))
        assert moved[push.run_id] == (1, 50, 0) and moved[intraday_id] == (1, 0, 10), moved
        assert moved[applied.run_id][0] > 0 and moved[rerun.run_id] == (0, 0, 0), moved

        runs = (applied, rerun, dry_run, stopped, extract, push)
        statuses = {r.run_id: get_run(store, r.run_id)["status"] for r in runs}
        statuses[intraday_id] = get_run(store, intraday_id)["status"]
        assert list(statuses.values()) == ["applied", "applied", "dry_run", "failed", "failed", "applied",
                                           "applied"], statuses

        standalone.launch().wait_ready(timeout=240)  # launch(): again if a module before gave up
        deadline = time.monotonic() + 90
        while standalone.api("GET", f"/api/v2/dags/{PUSH}").status_code != 200:
            assert time.monotonic() < deadline, f"{PUSH} not registered"
            time.sleep(0.5)
        assert standalone.api("PATCH", f"/api/v2/dags/{PUSH}", json={"is_paused": False}).status_code == 200
        refused_id = f"manual__ops-override-{int(time.time())}"
        response = standalone.api("POST", f"/api/v2/dags/{PUSH}/dagRuns",
                                  json={"dag_run_id": refused_id, "logical_date": None, "conf": REFUSED_CONF})
        assert response.status_code == 200, response.text
        assert wait_for_run(standalone, PUSH, refused_id)["state"] == "failed"
        yield Ops(standalone, applied.run_id, dry_run.run_id, stopped.run_id, extract.run_id, refused_id,
                  made + 8, rerun=rerun.run_id, push=push.run_id, intraday=intraday_id, moved=moved)
    finally:
        if saved_base is None:
            os.environ.pop("AIRFLOW__API__BASE_URL", None)
        else:
            os.environ["AIRFLOW__API__BASE_URL"] = saved_base
        if saved_zone is None:
            os.environ.pop("AIRFLOW__API__DEFAULT_UI_TIMEZONE", None)
        else:
            os.environ["AIRFLOW__API__DEFAULT_UI_TIMEZONE"] = saved_zone


# ------------------------------------------------------------------------------------------- looking

def report(ops: Ops, run_id: str) -> str:
    return f"{ops.base}/stocksync/reports/{run_key(run_id)}/report.html"


def page_of(ops: Ops, dag_id: str, run_id: str) -> str:
    return f"{ops.base}/stocksync/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


NO_OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"
SVG_SIZES = "(sel) => [...document.querySelectorAll(sel)].map(e => { const r = e.getBoundingClientRect(); " \
            "return [r.width, r.height]; })"


def assert_fits(scope: Any, where: str) -> None:
    scroll, inner = scope.evaluate(NO_OVERFLOW)
    assert scroll <= inner, f"{where}: the page is {scroll} px wide in a {inner} px window"


def assert_charts(scope: Any, selector: str, count: int, where: str) -> None:
    sizes = scope.evaluate(SVG_SIZES, selector)
    assert len(sizes) >= count, f"{where}: {len(sizes)} charts ({selector}), wanted {count}"
    assert all(w > 20 and h > 10 for w, h in sizes), f"{where}: a chart has no size: {sizes}"


def headline(scope: Any) -> str:
    return re.sub(r"\s+", " ", scope.locator("#headline").inner_text()).strip()


def test_each_page_says_what_happened_fits_the_screen_and_draws_its_charts(ops: Ops) -> None:
    """Every kind of run at 1366 and 1920 px: the headline first, in words; no sideways scrolling;
    the charts drawn. The runs page lists all of them, refused ones included, with trends."""
    from playwright.sync_api import expect

    pages = [
        ("nightly_applied", report(ops, ops.applied), r"^Applied: \d+ SKUs changed \(\+[\d,]+ / −[\d,]+ units\)\.$",
         "svg.chart"),
        ("dry_run_guardrail", report(ops, ops.dry_run),
         r"^Dry run, nothing written: a real run would change \d+ SKUs .* but it would stop: 7\.5% of SKUs would "
         r"drop from in stock to 0", "svg.chart"),
        ("nightly_guardrail", report(ops, ops.stopped),
         r"^Stopped by a guardrail before writing anything: 7\.5% of SKUs would drop from in stock to 0 \(15; at "
         r"most 5\.0% allowed\)\. Nothing was written to the shop\.$", "svg.chart"),
        ("refused", page_of(ops, PUSH, ops.refused),
         r"^Refused at its first task: override_guardrails is true but override_reason is empty", None),
        ("extract_failed", report(ops, ops.extract),
         r"^Failed at extract \(reading the WMS counts\) because .*503.*\. Nothing was written to the shop\.$", None),
        ("override_applied", report(ops, f"manual__night-{GUARDRAIL_NIGHT:02d}-push-1"),  # the 1,000-character reason
         r"^Applied: 15 SKUs changed \(−[\d,]+ units\), with the guardrails overridden\.$", "svg.chart"),
    ]
    with browser_page(height=900) as page:
        seen = watch(page)
        page.goto(ops.base + "/stocksync/")
        sign_in(page, ops.airflow)
        page.wait_for_url(ops.base + "/stocksync/")
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, url, wanted, charts in pages:
                page.goto(url)
                text = headline(page)
                assert re.search(wanted, text), f"{name}: {text!r}"
                assert_fits(page, f"{name} at {width}")
                if charts:
                    assert_charts(page, charts, 2, name)
                page.screenshot(path=str(SCREENSHOTS / f"ops_{name}_{width}.png"), full_page=True)

            page.goto(ops.base + "/stocksync/")
            expect(page.locator("h1")).to_have_text("Stock sync")
            rows = page.locator("table.runs tbody tr")
            expect(rows).to_have_count(ops.runs)
            assert_fits(page, f"runs page at {width}")
            assert_charts(page, ".trend svg", 6, "trends")
            assert_charts(page, "section[aria-label='Availability service'] svg", 1, "availability")
            page.screenshot(path=str(SCREENSHOTS / f"ops_runs_page_{width}.png"), full_page=True)
    assert seen.dialogs == [] and seen.blocked_scripts() == []


def test_alerts_links_zone_and_the_plan_browser(ops: Ops, webhook: Any) -> None:
    """What an operator follows from the page: the alert (short, with the cause, what checkout does
    now and the run's link), the run's task log in Airflow, the times (Europe/Berlin, UTC on hover),
    the SKUs a guardrail would zero in the plan browser, and the page inside Airflow's own iframe."""
    from playwright.sync_api import expect

    sent = {(a["body"]["dag_id"], a["body"]["run_id"]): a["body"] for a in webhook.received()
            if a["body"].get("kind", "task_failed") == "task_failed"}
    extract = sent[(NIGHTLY, ops.extract)]
    assert extract["text"].startswith("stocksync Nightly sync (inventory_nightly_sync): Failed at extract (reading the "
                                      "WMS counts) because WMS unreachable after 3 attempts")
    assert "Checkout: open again (released by the run's teardown)." in extract["text"]
    assert extract["text"].endswith(f"/stocksync/runs/{NIGHTLY}/{quote(ops.extract, safe='')}")
    assert len(extract["text"]) < 500 and extract["checkout_closed_until"] is None
    refused = sent[(PUSH, ops.refused)]  # sent at once by the standalone's worker: its first task failed
    assert refused["text"].startswith("stocksync Ops push (inventory_full_push): Refused at its first task: "
                                      "override_guardrails is true but override_reason is empty")
    assert "Checkout: open (this run never closed it)." in refused["text"]
    stopped = sent[(NIGHTLY, ops.stopped)]
    assert "Stopped by a guardrail before writing anything: 7.5% of SKUs" in stopped["text"]

    with browser_page(height=900) as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(urljoin(ops.base + "/", refused["report_url"]))  # the alert's link
        sign_in(page, ops.airflow)
        page.wait_for_url("**/stocksync/runs/**")
        assert headline(page).startswith("Refused at its first task")
        page.get_by_role("link", name="Task log").click()  # Airflow's own task instance page and its log
        page.wait_for_url(f"**/dags/{PUSH}/runs/**/tasks/freeze_checkout")
        expect(page.get_by_text("override_reason is empty").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "ops_refused_task_log_1366.png"))

        page.goto(ops.base + "/stocksync/")
        # the zone's abbreviation today (CET in winter, CEST in summer), from the IANA database
        expect(page.locator("table.runs thead")).to_contain_text(f"Started ({datetime.now(ZoneInfo(ZONE)).tzname()})")
        # the schedule in the shop's zone (UTC here) and in the page's, which differ
        shop_run = datetime.combine(datetime.now(timezone.utc).date(), dtime(2, 30), timezone.utc)
        shop_run += timedelta(days=1) if shop_run <= datetime.now(timezone.utc) else timedelta(0)
        berlin = shop_run.astimezone(ZoneInfo(ZONE))
        expect(page.locator("#schedule")).to_contain_text(
            f"runs on 30 2 * * * in the shop's time zone, UTC: next at {shop_run:%Y-%m-%d %H:%M} UTC "
            f"({berlin:%Y-%m-%d %H:%M} {berlin.tzname()} here)")
        first = page.locator("table.runs tbody time").first
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", first.get_attribute("title") or "")
        page.goto(ops.base + "/stocksync/?status=refused")  # a filter is a query parameter, applied server-side
        expect(page.locator("table.runs tbody tr")).to_have_count(1)
        expect(page.locator("table.runs tbody tr")).to_contain_text(ops.refused)
        page.locator("select[name=status]").select_option("dry_run")
        page.get_by_role("button", name="Filter").click()  # the form submits the same query, no script
        page.wait_for_url("**status=dry_run**")
        expect(page.locator("table.runs tbody tr[data-status=dry_run]")).to_have_count(6)

        page.goto(report(ops, ops.dry_run))
        page.get_by_role("link", name="all of them").click()  # the SKUs the guardrail would zero, from the plan
        expect(page.locator("#count")).to_have_text("SKUs 1–15 of 15")
        assert sorted(page.locator("tbody code").all_inner_texts()) == ZEROED
        assert_fits(page, "plan browser")
        page.screenshot(path=str(SCREENSHOTS / "ops_plan_browser_1366.png"), full_page=True)

        page.goto(ops.base + "/plugin/stocksync")  # the page inside Airflow's UI, at 1366 px
        frame = page.frame_locator("iframe")
        expect(frame.locator("h1")).to_have_text("Stock sync")
        inner = page.locator("iframe").element_handle().content_frame()
        assert_fits(inner, "runs page in Airflow's iframe")
        assert_charts(inner, ".trend svg", 6, "trends in the iframe")
        page.screenshot(path=str(SCREENSHOTS / "ops_runs_page_in_airflow_1366.png"))


NOTES_SCREENS = Path("/work/notes/screens")


def units_text(up: int, down: int) -> str:
    """How a movement's units read: +1,234 / −56 units (U+2212 minus), one side when the other is 0."""
    parts = ([f"+{up:,}"] if up else []) + ([f"−{down:,}"] if down else [])
    return f"{' / '.join(parts)} units" if parts else "no units"


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_every_figure_on_the_page_is_its_own_runs(ops: Ops) -> None:
    """The Stock sync page and the reports at 1366 px, figure by figure, against what each run did
    to the shop (its stock before and after, read by the fixture): the nightly, its re-run that
    changed nothing, the dry run, the +50 push and the −10 intraday run; the night's trend point
    is what the night applied (the re-run marked, not shown as 0); a run Airflow never ran has no
    Airflow link, a run it ran has one."""
    from playwright.sync_api import expect

    assert ops.moved is not None
    n, up, down = ops.moved[ops.applied]
    sku_word = {1: "SKU"}
    wanted = {
        ops.applied: (f"Applied: {n:,} SKUs changed ({units_text(up, down)}).",
                      f"{n:,} SKUs {units_text(up, down)}"),
        ops.rerun: ("Applied: the shop already matched the WMS, nothing needed to change.", "0 SKUs no units"),
        ops.push: ("Applied: 1 SKU changed (+50 units).", "1 SKU +50 units"),
        ops.intraday: ("Applied: 1 SKU changed (−10 units).", "1 SKU −10 units"),
    }
    dn, dup, ddown = ops.moved[ops.dry_run]
    wanted[ops.dry_run] = (f"Dry run, nothing written: a real run would change {dn} SKUs ({units_text(dup, ddown)}), "
                           "but it would stop",
                           f"would change {dn} {sku_word.get(dn, 'SKUs')} {units_text(dup, ddown)}")
    NOTES_SCREENS.mkdir(parents=True, exist_ok=True)
    with browser_page(height=900) as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.goto(ops.base + "/stocksync/")
        sign_in(page, ops.airflow)
        page.wait_for_url(ops.base + "/stocksync/")
        for run_id, (sentence, cell) in wanted.items():
            row = page.locator("table.runs tbody tr").filter(has=page.locator(f'a[title="{run_id}"]'))
            expect(row).to_have_count(1)
            assert squash(row.locator(".headline-text").inner_text()).startswith(sentence), run_id
            assert squash(row.locator("td.num").inner_text()) == cell, (run_id, row.locator("td.num").inner_text())
        assert "no units" not in squash(page.locator("table.runs tbody tr").filter(
            has=page.locator(f'a[title="{ops.push}"]')).inner_text())

        # tonight's trend point: what the night applied (the re-run adds 0 and is marked)
        changed = page.locator(".trend[data-trend=skus_changed]")
        assert squash(changed.locator(".v").inner_text()).startswith(f"{n:,} "), changed.locator(".v").inner_text()
        assert squash(page.locator(".trend[data-trend=units_moved] .v").inner_text()).startswith(f"{up + down:,} ")
        expect(changed.locator("rect.rerun")).to_have_count(1)
        assert changed.locator("rect.rerun").get_attribute("data-reruns") == "1"

        # Airflow links only where Airflow has the run: the refused push ran in the standalone;
        # the history and this morning's dag.test() runs ran elsewhere
        refused = page.locator("table.runs tbody tr").filter(has=page.locator(f'a[title="{ops.refused}"]'))
        expect(refused.get_by_role("link", name="Airflow")).to_have_count(1)
        elsewhere = page.locator("table.runs tbody tr").filter(has=page.locator(f'a[title="{ops.push}"]'))
        expect(elsewhere.get_by_role("link", name="Airflow")).to_have_count(0)
        expect(elsewhere).to_contain_text("not in Airflow")
        page.screenshot(path=str(NOTES_SCREENS / "stock_sync_page_1366.png"), full_page=True)

        for name, run_id in (("nightly", ops.applied), ("push", ops.push), ("intraday", ops.intraday),
                             ("dry_run", ops.dry_run)):
            page.goto(report(ops, run_id))
            assert headline(page).startswith(wanted[run_id][0]), (name, headline(page))
            page.screenshot(path=str(NOTES_SCREENS / f"report_{name}_1366.png"), full_page=True)
            if name == "dry_run":  # the caption counts the bars drawn
                caption = squash(page.locator("#zeroed-caption").inner_text())
                assert f"the {min(dn, 15)} biggest of {dn} drawn" in caption, caption
