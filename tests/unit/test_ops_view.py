"""What the pages and alerts say about a run (pure functions, no services): the headline of
every kind of run and what to do next, checks that agree with what stopped a run, the trends and
the nights that stand out, the charts' axes, the display time zone, the runs page's filters, the
availability panel, the plan browser's CSV fallback and the phone-sized alert.

The runs are shaped as `stocksync.sync_runs` rows with the values the pipeline records (the error
prefixes of `runs.record_failure`, the guardrails of `guardrails.check_plan`), so a change in
what the pipeline records that the pages misread fails here.
"""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.ops import alert_text
from include.stocksync.runs import runview
from include.stocksync.sync.guardrails import Guardrail, GuardrailFailed
from include.stocksync.ui import charts, opsview
from include.stocksync.ui.pages import display_zone, render, when
from include.stocksync.ui.report import PLAN_HEADERS

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)
ZEROED = {"name": "max_zeroed_share", "value": 0.075, "limit": 0.05, "success": False,
          "observed": "7.5% of SKUs would drop from in stock to 0 (15; at most 5.0% allowed)"}
PASSED = {"name": "max_changed_share", "value": 0.1, "limit": 0.3, "success": True, "observed": "10.0% of SKUs"}


def record(**overrides: Any) -> dict[str, Any]:
    run = {"run_id": "scheduled__2026-11-23T02:00:00+00:00", "dag_id": "inventory_nightly_sync", "status": "applied",
           "started_at": NOW, "finished_at": NOW + timedelta(seconds=40), "closed_at": NOW + timedelta(seconds=41),
           "freeze_mode": "full", "freeze_seconds": 38.5, "dq_success": True, "guardrails": [PASSED],
           "options": {}, "override_reason": None, "error": None, "first_error": None, "quarantined": 0,
           "changed": 12, "clamped": 1, "stage_seconds": {"extract": 3.0}, "recorded": True}
    return {**run, **overrides}


def guardrail_error() -> str:
    return f"merge: {GuardrailFailed([Guardrail(**ZEROED)])}"


# ----------------------------------------------------------------------------------------- headlines

def test_an_applied_run_says_what_changed() -> None:
    story = runview.story(record(), movement=runview.Movement(13, 1234, 56), base="")
    assert story.sentence == "Applied: 13 SKUs changed (+1,234 / −56 units)."
    assert story.kind == "ok" and story.steps == ()
    nothing = runview.story(record(), movement=runview.Movement(0, 0, 0), base="")
    assert nothing.sentence == "Applied: the shop already matched the WMS, nothing needed to change."


def test_a_run_stopped_by_a_guardrail_never_reads_as_passed_and_advises_the_ops_push() -> None:
    """The guardrail failure is the run's first cause; the advice names the DAG that has an override
    (the nightly refuses override_guardrails) and the SKUs it would zero come from its plan."""
    run = record(status="failed", guardrails=[ZEROED, PASSED], error=guardrail_error(), first_error=guardrail_error(),
                 changed=None, clamped=None)
    story = runview.story(run, base="")
    assert story.sentence == ("Stopped by a guardrail before writing anything: 7.5% of SKUs would drop from in stock "
                              "to 0 (15; at most 5.0% allowed). Nothing was written to the shop.")
    assert story.stopped_by == "guardrail" and story.task_id == "merge_in_window_orders"
    assert runview.checks_verdict(run).text == "guardrail tripped"  # dq_success is True: it must not say passed
    advice = " ".join(s.text for s in story.steps)
    assert "inventory_full_push" in advice and "nightly sync takes no override" in advice
    codes = [s.code for s in story.steps if s.code]
    assert codes == ['{"dry_run": true}', '{"dry_run": false, "override_guardrails": true, '
                                          '"override_reason": "<why these figures are right>"}']
    links = [href for s in story.steps for _, href in s.links]
    assert "/dags/inventory_full_push" in links
    assert "/dags/inventory_nightly_sync/runs/scheduled__2026-11-23T02%3A00%3A00%2B00%3A00/tasks/" \
           "merge_in_window_orders" in links
    # the stock advice in the error itself names the ops push too (guardrails.GuardrailFailed)
    assert "dry run of inventory_full_push" in guardrail_error()


def test_an_overridden_guardrail_is_a_warning_not_a_stop() -> None:
    run = record(guardrails=[ZEROED], override_reason="stock take", options={"override_guardrails": True})
    assert runview.checks_verdict(run).text == "overridden"
    assert runview.story(run, movement=runview.Movement(15, 0, 400), base="").sentence.endswith(
        "with the guardrails overridden.")


def test_a_dry_run_reads_as_a_plan_and_never_froze() -> None:
    run = record(status="dry_run", options={"dry_run": True}, guardrails=[ZEROED], freeze_seconds=None)
    story = runview.story(run, movement=runview.Movement(15, 0, 4002, 15, planned=True), base="")
    assert story.sentence == ("Dry run, nothing written: a real run would change 15 SKUs (−4,002 units), but it "
                              "would stop: 7.5% of SKUs would drop from in stock to 0 (15; at most 5.0% allowed).")
    assert story.title == "Dry run" and story.kind == "warn"
    assert runview.checkout_phrase(run) == "never closed (a dry run freezes nothing)"
    assert runview.checks_verdict(run).text == "guardrail would trip"
    quiet = runview.story(record(status="dry_run", options={"dry_run": True}), base="")
    assert quiet.kind == "plan" and quiet.sentence == "Dry run, nothing written: its report has the plan."
    idle = runview.story(record(status="dry_run", options={"dry_run": True}), movement=runview.Movement(planned=True),
                         base="")
    assert idle.sentence == "Dry run, nothing written: a real run would change nothing." and idle.steps == ()


def test_a_failed_validation_names_the_check() -> None:
    error = "validate: WMS counts failed validation, nothing was written: quantity_non_negative[available]: 1 of 200"
    run = record(status="failed", dq_success=False, guardrails=None, error=error, first_error=error)
    checks = [{"check_name": "quantity_non_negative[available]", "success": False, "policy": "fail",
               "observed": "1 of 200 rows offending"},
              {"check_name": "sku_format[sku]", "success": False, "policy": "quarantine", "observed": "1 row"}]
    story = runview.story(run, checks=checks, base="")
    assert story.sentence == ("Stopped at validation: check quantity_non_negative[available] failed (1 of 200 rows "
                              "offending). Nothing was written to the shop.")
    assert runview.checks_verdict(run).text == "check failed"


def test_quarantine_checks_over_their_share_are_named_with_their_skus() -> None:
    error = ("validate: WMS counts failed validation, nothing was written: sku_format[sku]: 3 of 40 rows offending; "
             "unknown_sku[sku]: 3 of 40 rows offending")
    run = record(status="failed", dq_success=False, guardrails=None, error=error, first_error=error)
    checks = [{"check_name": "sku_format[sku]", "success": False, "policy": "quarantine",
               "observed": "3 of 40 rows offending", "examples": '["bad one", "bad two", "bad three", "bad four"]'},
              {"check_name": "unknown_sku[sku]", "success": False, "policy": "quarantine",
               "observed": "3 of 40 rows offending", "examples": [False, False, False]}]
    story = runview.story(run, checks=checks, base="")
    assert story.sentence == ("Stopped at validation: check sku_format[sku] failed (3 of 40 rows offending, e.g. "
                              "bad one, bad two, bad three …) (and 1 more). Nothing was written to the shop.")
    assert runview.example_phrase([False, False]) == ""  # a derived flag names nothing


def test_a_failed_extract_says_the_step_and_the_first_cause() -> None:
    first = "extract: WMS unreachable after 3 attempts at http://wms/v1/stock (page 1): HTTP 503"
    run = record(status="failed", dq_success=None, guardrails=None, error="extract: later attempt", first_error=first)
    story = runview.story(run, base="")
    assert story.sentence == ("Failed at extract (reading the WMS counts) because WMS unreachable after 3 attempts "
                              "at http://wms/v1/stock (page 1): HTTP 503. Nothing was written to the shop.")
    assert story.task_id == "extract_wms_counts" and story.title == "Failed at extract"
    assert runview.checks_verdict(run).text == "not run"
    assert runview.checkout_phrase(run, short=True) == "38.5 s (full)"


def test_a_refused_run_has_no_record_and_says_why() -> None:
    story = runview.story({"dag_id": "inventory_full_push", "run_id": "manual__x", "recorded": False},
                          failed_task="freeze_checkout", base="",
                          error="override_guardrails is true but override_reason is empty: say why")
    assert story.sentence == ("Refused at its first task: override_guardrails is true but override_reason is empty: "
                              "say why. Nothing was frozen or written.")
    assert story.title == "Refused" and story.steps[0].links[0] == (
        "Task log", "/dags/inventory_full_push/runs/manual__x/tasks/freeze_checkout")
    row = opsview.run_row({"dag_id": "inventory_full_push", "run_id": "manual__x", "status": "refused",
                           "recorded": False, "failed_task": "freeze_checkout", "error": "bad", "started_at": NOW,
                           "finished_at": NOW}, report_href=None, base="")
    assert row["report_href"] == "runs/inventory_full_push/manual__x" and row["verdict"].text == "not run"
    assert row["checkout"] == "never closed" and row["took"] is None


def test_runs_without_a_record_are_those_of_tasks_before_the_setup_opens_one() -> None:
    from include.stocksync.airflow.file_tasks import WAIT_TASK_ID

    assert set(runview.EARLY_TASKS) == {"freeze_checkout", WAIT_TASK_ID}


def test_long_causes_are_cut_and_the_whole_kept() -> None:
    cause = runview.short_cause("load: " + "word " * 100)
    assert cause is not None and len(cause) <= 222 and cause.endswith(" …")
    assert runview.short_cause("extract: first line\nsecond line") == "first line"


# -------------------------------------------------------------------------------------- charts, trends

def test_outliers_are_robust_to_one_wild_night() -> None:
    values = [5, 6, 4, 5, 7, 5, 45, 6, None, 5]
    flags = charts.outliers(values)
    assert flags == [False] * 6 + [True] + [False] * 3
    assert charts.outliers([0, 0, 0, 0, 0, 1]) == [False] * 5 + [True]  # any failed check on quiet nights
    assert charts.outliers([1, 2, 90]) == [False] * 3  # too few nights to judge


def test_trends_chart_the_last_thirty_nights_and_mark_the_odd_and_failed_ones() -> None:
    today = date(2026, 11, 23)
    runs = [{"night": today - timedelta(days=n), "status": "applied", "skus_changed": 45 if n == 12 else 5,
             "units_moved": 100, "freeze_seconds": 30.0, "duration_seconds": 40.0, "failed_checks": 0,
             "failed_runs": 1 if n == 20 else 0} for n in range(29, -1, -1)]
    drift = [{"night": today - timedelta(days=n), "skus_off": 5, "alert": n == 3} for n in range(29, -1, -1)]
    shown = {t["key"]: t["chart"] for t in opsview.trends(runs, drift, today=today)}
    assert list(shown) == ["skus_changed", "units_moved", "freeze_seconds", "duration_seconds", "failed_checks",
                           "skus_off"]
    changed = shown["skus_changed"]
    assert [o["night"] for o in changed["outliers"]] == [today - timedelta(days=12)]
    assert len(changed["bars"]) == 30 and all(b["height"] > 0 for b in changed["bars"])
    assert sum(b["failed"] for b in changed["bars"]) == 1
    assert [o["night"] for o in shown["skus_off"]["outliers"]] == [today - timedelta(days=3)]  # the drift's own alert
    assert shown["freeze_seconds"]["latest"] == "30.0 s" and shown["skus_changed"]["median"] == "5"
    empty = opsview.trends([], [], today=today)
    assert all(t["chart"]["empty"] and t["chart"]["bars"] == [] for t in empty)


def test_histogram_has_round_ticks_and_unit_ranges() -> None:
    drawn = charts.histogram([(-3, 2), (-1, 10), (0, 3), (1, 37), (2, 4)])
    assert drawn is not None
    assert [t["label"] for t in drawn["ticks"]] == ["0", "10", "20", "30", "40"]
    assert [b["label"] for b in drawn["bars"]] == ["−999…−100", "−9…−1", "0", "+1…+9", "+10…+99"]
    assert all(0 < b["x"] < drawn["width"] and b["height"] >= 0 for b in drawn["bars"])
    assert charts.nice_ticks(7) == [0.0, 2.0, 4.0, 6.0, 8.0] and charts.histogram([]) is None


def test_movers_put_decreases_left_of_the_zero_line() -> None:
    drawn = charts.movers([{"sku": "A", "delta": -50, "old_qty": 60, "new_qty": 10},
                           {"sku": "B" * 40, "delta": 25, "old_qty": 0, "new_qty": 25}])
    assert drawn is not None
    down, up = drawn["bars"]
    assert down["x"] + down["width"] == pytest.approx(drawn["zero"]) and up["x"] == pytest.approx(drawn["zero"])
    assert up["short"].endswith("…") and len(up["short"]) == 28 and up["sku"] == "B" * 40
    assert down["value"] == "−50" and up["value"] == "+25"


# ---------------------------------------------------------------------------------- zone, filters

def test_times_show_in_the_airflow_ui_zone_with_utc_on_hover(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__DEFAULT_UI_TIMEZONE", "Europe/Berlin")
    assert display_zone()[1] == "Europe/Berlin"
    assert str(when(NOW, zone=True)) == ('<time datetime="2026-11-23T02:30:00+00:00" title="2026-11-23 02:30:00 UTC">'
                     '2026-11-23 03:30 CET</time>')
    monkeypatch.setenv("AIRFLOW__API__DEFAULT_UI_TIMEZONE", "Not/AZone")
    assert display_zone()[1] == "UTC"
    monkeypatch.delenv("AIRFLOW__API__DEFAULT_UI_TIMEZONE")
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "America/New_York")
    assert display_zone()[1] == "America/New_York"
    page = render("alerts_table.html", zone="Asia/Tokyo", alerts=[{  # a page renders in the zone it is given
        "sent_at": NOW, "task_id": "t", "try_number": 1, "target": "x", "delivered": True, "error": ""}])
    assert ">2026-11-23 11:30:00</time>" in page and 'title="2026-11-23 02:30:00 UTC"' in page


def test_runs_page_filters_are_checked_query_parameters() -> None:
    parsed = opsview.Filters.parse({"dag": "inventory_nightly_sync", "status": "failed", "since": "2026-11-01",
                                    "until": "2026-11-23", "page": "2"}, runview.SYNC_DAGS)
    assert parsed.problems == () and parsed.active
    since, until = parsed.bounds(display_zone("Europe/Berlin")[0])
    assert since == datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc)
    assert until == datetime(2026, 11, 23, 23, 0, tzinfo=timezone.utc)  # the whole last day
    assert parsed.query(page=3) == "dag=inventory_nightly_sync&status=failed&since=2026-11-01&until=2026-11-23&page=3"
    bad = opsview.Filters.parse({"status": "<script>", "since": "yesterday", "page": "x"}, runview.SYNC_DAGS)
    assert bad.status is None and bad.since is None and bad.page == 1 and len(bad.problems) == 2
    far = opsview.Filters.parse({"since": "0001-01-01", "until": "9999-12-31"}, runview.SYNC_DAGS)
    assert far.since is None and far.until is None and far.bounds(timezone.utc) == (None, None)  # no overflow
    assert far.problems == ("since must be a date from 2000 to 2999", "until must be a date from 2000 to 2999")


def test_availability_panel_sums_the_last_day() -> None:
    hour = datetime(2026, 11, 23, 2, tzinfo=timezone.utc)
    hours = [{"hour": hour - timedelta(hours=n), "requests": 100, "unknown": 3, "rejected": 1, "workers": 2,
              "unknown_causes": {"db_timeout": 1, "unmapped_options": 2}, "latency_p95_le_ms": 5.0 + n,
              "latency_max_ms": 40.0} for n in range(3)]
    panel = opsview.availability(hours, now=hour + timedelta(minutes=20))
    assert panel is not None
    assert (panel["requests"], panel["unknown"], panel["rejected"], panel["p95_worst"]) == (300, 9, 3, 7.0)
    assert panel["causes"] == [("unmapped_options", 6), ("db_timeout", 3)] and panel["spark"]["lines"]
    assert opsview.availability([], now=hour) is None


def test_plan_browser_reads_a_plan_csv_when_the_table_is_gone(tmp_path: Path) -> None:
    from plugins.stocksync_plugin import PLAN_PAGE_SIZE, _plan_from_csv

    path = tmp_path / "plan.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PLAN_HEADERS)
        for n in range(250):
            writer.writerow([f"SKU-{n:04d}", 10, 0 if n < 120 else 12, 0, 0 if n < 120 else 12, -10 if n < 120 else 2,
                             "changed"])
        writer.writerow(["SKU-unknown", "", 5, 0, "", 0, "unknown"])
    rows, total, outcomes = _plan_from_csv(path, outcome=None, sku=None, zeroed=True, page=2)
    assert total == 120 and len(rows) == 120 - PLAN_PAGE_SIZE and rows[0]["sku"] == f"SKU-{PLAN_PAGE_SIZE:04d}"
    assert outcomes == [("changed", 250), ("unknown", 1)]
    rows, total, _ = _plan_from_csv(path, outcome="unknown", sku="unk", zeroed=False, page=1)
    assert total == 1 and rows[0]["current_qty"] is None


# ----------------------------------------------------------------------------------------- alerts

def test_an_alert_fits_a_phone_and_says_what_checkout_does() -> None:
    body = {"kind": "task_failed", "dag_id": "inventory_nightly_sync", "run_id": "r1", "task_id": "extract_wms_counts",
            "error": "WMS unreachable " + "x" * 3000, "report_url": "https://airflow/stocksync/runs/inventory_nightly_sync/r1",
            "text": "stocksync: inventory_nightly_sync failed at extract_wms_counts (run r1)"}
    first = "extract: WMS unreachable after 3 attempts: HTTP 503"
    run = record(status="failed", error=first, first_error=first, dq_success=None, guardrails=None)
    sent = alert_text.compose(body, run, [], None)
    assert sent["text"] == ("stocksync Nightly sync (inventory_nightly_sync): Failed at extract (reading the WMS "
                            "counts) because WMS unreachable after 3 attempts: HTTP 503. Nothing was written to the "
                            "shop. Checkout: open again (released by the run's teardown).")
    assert alert_text.for_chat(sent)["text"] == sent["text"] + " https://airflow/stocksync/runs/inventory_nightly_sync/r1"
    assert len(sent["text"]) < 400 and sent["error"] == body["error"]  # the full error stays
    assert sent["checkout_closed_until"] is None and sent["step"] == "extract"
    held = alert_text.compose(body, run, [], NOW + timedelta(minutes=5))
    unread = alert_text.compose(body, run, [], None, freeze_known=False)  # the shop could not be read
    assert "Checkout: unknown (the shop's freezes could not be read" in unread["text"]
    assert "Checkout: still closed by this run until 2026-11-23 02:35 UTC at the latest" in held["text"]
    refused = alert_text.compose({**body, "task_id": "freeze_checkout", "error": "unknown run parameter(s): x"},
                                 None, [], None)
    assert refused["text"].startswith("stocksync Nightly sync (inventory_nightly_sync): Refused at its first task: "
                                      "unknown run parameter(s): x. Nothing was frozen or written. Checkout: open")
    other = {"kind": "drift", "run_id": "r1", "text": "drift far above the trend"}
    assert alert_text.summarize(None, other) is other  # type: ignore[arg-type]  # other kinds keep their text


HOSTILE_SKUS = ["<https://evil.example|click>", "[click](https://evil.example/y)", "<!channel> @here @everyone",
                "<b>x</b> & co"]


def test_a_chat_alert_shows_data_as_text_and_links_the_run_page_on_the_airflow_server() -> None:
    """Slack's mrkdwn needs `&`, `<`, `>` escaped (api.slack.com/reference/surfaces/formatting#escaping);
    Markdown clients link `[x](y)` and bare URLs, and ping `@here`. None of that may come from data."""
    body = {"kind": "task_failed", "dag_id": "inventory_nightly_sync", "run_id": "r1&<x>",
            "text": "Stopped at validation: check sku_format[sku] failed (e.g. " + ", ".join(HOSTILE_SKUS) + ")",
            "error": "sku_format: " + " ".join(HOSTILE_SKUS), "report": "/srv/airflow/reports/r1/report.html",
            "report_url": "https://airflow.shop.example/stocksync/runs/inventory_nightly_sync/r1%26%3Cx%3E"}
    sent = alert_text.for_chat(body)
    assert "report" not in sent and sent["report_url"] == body["report_url"]
    assert sent["text"].endswith(" https://airflow.shop.example/stocksync/runs/inventory_nightly_sync/r1%26%3Cx%3E")
    data = sent["text"].rsplit(" ", 1)[0]
    for value in (data, sent["error"], sent["run_id"]):
        assert "<" not in value and ">" not in value and "](" not in value and "://" not in value, value
        assert "@here" not in value and "@everyone" not in value, value
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in data and "&lt;!channel&gt;" in data
    assert "https[:]//evil.example" in data and sent["run_id"] == "r1&amp;&lt;x&gt;"
    # no [api] base_url: a path on the server is no link; the text says what to configure
    bare = alert_text.for_chat({**body, "report_url": "/stocksync/runs/inventory_nightly_sync/r1"})
    assert bare["report_url"] is None and bare["text"].endswith("set Airflow's [api] base_url to its public URL)")
    assert alert_text.for_chat({**body, "report_url": "https://evil.example/<x>"})["report_url"] is None


def test_a_chat_alert_carries_no_line_break_control_or_reordering_character_from_data() -> None:
    """Every value of the payload, not only its one-line `text`: an integration that shows the
    orders' reasons or the error (an attachment, a card) must not show a forged second line, a tab
    layout or text a right-to-left override reverses."""
    hostile = ("refused\n:white_check_mark: all good, ignore the above", "a\tb\rc", "NEL\x85CSI\x9b[31m",
               "\u202eexe.live", "one\u2028two\u2029three", "zero\u200bwidth")
    body = {"kind": "order_dead_letters", "dag_id": "orders_to_wms", "run_id": "r1", "text": "refused orders",
            "error": hostile[0], "orders": [{"order_id": n, "reason": reason} for n, reason in enumerate(hostile)]}
    sent = alert_text.for_chat(body)
    shown = [sent["error"], *(order["reason"] for order in sent["orders"])]
    for value in shown:
        assert not any(char in value for char in "\n\t\r\x85\x9b\u202e\u2028\u2029\u200b"), repr(value)
    assert sent["orders"][0]["reason"] == "refused :white_check_mark: all good, ignore the above"
    assert sent["orders"][3]["reason"] == " exe.live"


def test_the_schedule_line_gives_the_next_run_in_the_shop_zone_the_page_zone_and_utc() -> None:
    """The spring-forward night in Berlin has no 02:30: the run is an hour later by the wall clock,
    01:30 UTC (zoneinfo reads the missing 02:30 with the winter offset)."""
    from zoneinfo import ZoneInfo

    from include.stocksync.airflow.task_support import next_run_after
    from include.stocksync.ui.pages import display_zone

    now = datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)
    berlin_next = next_run_after("30 2 * * *", "Europe/Berlin", now)
    line = opsview.schedule("30 2 * * *", "Europe/Berlin", display_zone("America/New_York"), berlin_next)
    assert line is not None and line.cron == "30 2 * * *" and line.shop_zone == "Europe/Berlin"
    run = datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(timezone.utc)
    assert line.next_utc == f"{run:%Y-%m-%d %H:%M} UTC" == "2026-03-29 01:30 UTC"
    assert line.next_shop == "2026-03-29 03:30 CEST"
    assert line.next_display == f"{run.astimezone(ZoneInfo('America/New_York')):%Y-%m-%d %H:%M} EDT"
    same = opsview.schedule("30 2 * * *", "Europe/Berlin", display_zone("Europe/Berlin"), berlin_next)
    assert same is not None and same.next_display is None  # one zone: said once
    assert next_run_after("not a cron", "UTC", now) is None
    assert opsview.schedule("not a cron", "UTC", display_zone("UTC"), None) is None


def test_a_passing_flag_check_has_no_skus_to_look_up() -> None:
    """unknown_sku records its examples as flags; with none (no row flagged) the report and the
    alert keep the empty list and never query for flagged SKUs (the cursor is not touched: at 1M
    SKUs that query is an anti-join of every raw row against the catalog)."""
    from include.stocksync.runs.checks import with_sku_examples

    passed = {"check_name": "unknown_sku[sku]", "success": True, "examples": []}
    assert with_sku_examples(None, record(), [passed]) == [passed]  # type: ignore[arg-type]
