"""Rendering of the report, plan and plugin pages with hostile text (pure functions, no services).

Text from the WMS and from run parameters reaches every page; these tests feed a script payload,
bidi overrides, zero-width and control characters and lone surrogates through each field and
check that the HTML holds only the elements our templates write, with every odd character shown
as a `⟨U+XXXX⟩` marker.
"""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.sync.guardrails import Guardrail
from include.stocksync.ui.pages import (
    CONTENT_SECURITY_POLICY,
    META_CONTENT_SECURITY_POLICY,
    RUN_STATUSES,
    SECURITY_HEADERS,
    check_result,
    render,
    run_status,
    visible,
    visible_text,
)
from include.stocksync.ui.report import plan_page, private_file, private_folder, report_page
from plugins.stocksync_plugin import (
    render_error_page,
    render_no_report_page,
    render_refused_page,
    render_runs_page,
)

SCRIPT = "<img src=x onerror=alert(1)><script>alert(1)</script>"
RLO = "\u202e"
HOSTILE = f"{SCRIPT}{RLO}gpj.exe\u200b\u2066x\u2069\x00\x1b\x85\ufeff\ud800\"'&"
STORED = HOSTILE.replace("\ud800", "")  # what a text column can hold (no lone surrogate)
ESCAPED_SCRIPT = "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
# every element our templates write; data must not add any
OUR_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead", "tbody", "tr",
            "th", "td", "code", "span", "a", "svg", "line", "text", "rect", "circle", "polyline", "ul", "ol", "li",
            "div", "strong", "section", "time", "small", "br", "pre", "details", "summary", "i", "colgroup", "col",
            "form", "label", "select", "option", "input", "button"}
NOW = datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc)


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def assert_inert(page: str) -> None:
    """Only our elements and no event handler attribute; the payload is there as text; nothing
    invisible or unencodable is left raw."""
    parser = Elements()
    parser.feed(page)
    assert parser.tags <= OUR_TAGS, parser.tags - OUR_TAGS
    assert not any(name.startswith("on") for name in parser.attributes), parser.attributes
    assert "<script" not in page and "<img" not in page
    # no markup inside an attribute value: a marker's <span> there would end the attribute
    assert not re.search(r'="[^"]*<', page), re.search(r'.{80}="[^"]*<.{40}', page)
    assert ESCAPED_SCRIPT in page
    for char in (RLO, "\u200b", "\u2066", "\u2069", "\x00", "\x1b", "\x85", "\ufeff", "\ud800", "\ufffd"):
        assert char not in page, repr(char)
    assert "⟨U+202E⟩" in page
    page.encode("utf-8")  # no lone surrogate left: the file and the response are UTF-8
    assert f'content="{META_CONTENT_SECURITY_POLICY}"'.replace("'", "&#39;") in page


@pytest.mark.parametrize(("char", "shown"), [
    ("\u202a", "⟨U+202A⟩"), ("\u202b", "⟨U+202B⟩"), ("\u202c", "⟨U+202C⟩"), ("\u202d", "⟨U+202D⟩"),
    ("\u202e", "⟨U+202E⟩"), ("\u2066", "⟨U+2066⟩"), ("\u2067", "⟨U+2067⟩"), ("\u2068", "⟨U+2068⟩"),
    ("\u2069", "⟨U+2069⟩"), ("\u200b", "⟨U+200B⟩"), ("\u200c", "⟨U+200C⟩"), ("\u200d", "⟨U+200D⟩"),
    ("\u200e", "⟨U+200E⟩"), ("\u200f", "⟨U+200F⟩"), ("\ufeff", "⟨U+FEFF⟩"), ("\x00", "⟨U+0000⟩"),
    ("\t", "⟨U+0009⟩"), ("\n", "⟨U+000A⟩"), ("\r", "⟨U+000D⟩"), ("\x1f", "⟨U+001F⟩"), ("\x7f", "⟨U+007F⟩"),
    ("\x80", "⟨U+0080⟩"), ("\x9f", "⟨U+009F⟩"), ("\ud800", "⟨U+D800⟩"), ("\udfff", "⟨U+DFFF⟩"),
    ("\u061c", "⟨U+061C⟩"), ("\u2028", "⟨U+2028⟩"), ("\u00ad", "⟨U+00AD⟩"), ("\U000e0041", "⟨U+E0041⟩"),
])
def test_visible_shows_each_invisible_character_as_a_marker(char: str, shown: str) -> None:
    assert visible(f"SKU-1{char}2") == f'SKU-1<span class="cc">{shown}</span>2'
    assert visible_text(f"SKU-1{char}2") == f"SKU-1{shown}2"


def test_visible_escapes_and_leaves_ordinary_text_alone() -> None:
    assert visible(SCRIPT + RLO) == f'{ESCAPED_SCRIPT}<span class="cc">⟨U+202E⟩</span>'
    assert visible("\"'&") == "&#34;&#39;&amp;"
    for text in ("SKU-0000001", "SKÜ-ß-😀", "שלום", "a b", "x/y.z-1_2"):
        assert visible(text) == text
    assert visible(None) == "" and visible(42) == "42"
    assert visible("line 1\nline 2\r", newlines=True) == 'line 1\nline 2<span class="cc">⟨U+000D⟩</span>'


def test_a_template_that_forgets_the_filter_still_escapes_and_marks() -> None:
    """`finalize` is the safety net: any string printed by any template goes through `visible`."""
    from include.stocksync.ui.pages import environment

    page = environment().from_string("<p>{{ text }}</p>").render(text=HOSTILE)
    assert page.startswith(f"<p>{ESCAPED_SCRIPT}<span class=\"cc\">⟨U+202E⟩</span>gpj.exe")
    assert "\ud800" not in page and "<script" not in page


def hostile_run(**overrides: Any) -> dict[str, Any]:
    run = {"run_id": HOSTILE, "dag_id": "inventory_full_push", "status": "failed", "triggered_by": HOSTILE,
           "override_reason": HOSTILE, "started_at": NOW, "finished_at": NOW, "freeze_mode": "full",
           "adjustment_mode": "unsent_orders", "watermark_source": "wms", "snapshot_id": HOSTILE,
           "error": f"validate: {HOSTILE}\nsecond line", "stage_seconds": {"validate": 0.25, "freeze": 0.5},
           "freeze_seconds": 1.5, "changed": 3, "clamped": 0, "stale": 0, "duplicate": 0, "dq_success": False,
           "alerts": 2, "quarantined": 1, "options": {"skus": [HOSTILE], "override_reason": HOSTILE},
           "warnings": [{"kind": "report_failed", "error": HOSTILE, "path": HOSTILE, "at": NOW.isoformat()}],
           "attempts": [{"stage": "validate", "error": f"validate: {HOSTILE}", "kind": "permanent",
                         "retries": [HOSTILE], "at": NOW.isoformat()}]}
    return {**run, **overrides}


def test_report_keeps_every_wms_and_parameter_string_as_text() -> None:
    page = report_page(
        HOSTILE, hostile_run(),
        checks=[{"check_name": "sku_format[sku]", "success": False, "policy": "quarantine",
                 "observed": f"1 of 200 rows offending {HOSTILE}", "examples": [HOSTILE]},
                {"check_name": "guardrail:max_changed_share", "success": False, "policy": "overridden",
                 "observed": "0.5", "examples": []},
                {"check_name": "columns", "success": True, "policy": "fail", "observed": "ok", "examples": []}],
        quarantined=[{"row_no": 30, "sku": HOSTILE, "reasons": ["sku_format[sku]", "unknown_sku[sku]"],
                      "raw": {"page": 0, "sku": HOSTILE, "available": HOSTILE}},
                     {"row_no": 31, "sku": None, "reasons": ["sku_not_null[sku]"], "raw": {"sku": None}}],
        changes=[{"sku": HOSTILE, "old_qty": None, "wms_available": 5, "adjustment": 1, "new_qty": 4, "delta": 4,
                  "outcome": "changed"}],
        alerts=[{"sent_at": NOW, "task_id": "validate_counts", "try_number": 1, "target": "stocksync_alerts/alerts",
                 "delivered": False, "delivery_error": HOSTILE, "error": HOSTILE}],
        buckets=[(-2, 1), (0, 4), (1, 3)], has_plan=True,
        movement={"skus_changed": 1, "units_up": 4, "units_down": 0, "zeroed": 0})
    assert_inert(page)
    # the content the integration tests and operators look for
    for text in ("<h2>Quarantined rows</h2>", "<h2>Alerts sent</h2>", "<h2>Data quality</h2>", "sku_format[sku]",
                 "unknown_sku[sku]", ">FAILED: rows quarantined<", ">FAILED (overridden)<", "1 other checks passed",
                 "NO: ",
                 '<a href="plan.html">', "2026-11-23 02:30:00 UTC", "(no SKU)", "second line", "<h2>Warnings</h2>",
                 "report not written", "<h2>Attempts</h2>", "1 retried request"):
        assert text in page, text
    # run id, error, triggered_by, reason, snapshot, checks, rows, alerts, warnings, attempts, parameters
    assert page.count(ESCAPED_SCRIPT) >= 12
    # failed checks first, passed ones folded away
    folded = page.index("<summary>1 other checks passed</summary>")
    assert page.index("sku_format[sku]") < folded < page.index(">columns<")
    # stage durations in pipeline order (the step chart's legend)
    assert page.index("Freeze checkout 0.50 s") < page.index("Validate 0.25 s")
    # the charts are numbers and our own labels; a SKU inside an SVG is plain text (an HTML <span> would end it)
    assert '<svg class="chart" xmlns="http://www.w3.org/2000/svg"' in page and ">−99…−10<" in page
    assert ">+1…+9<" in page
    svg = page.split("Biggest movers", 1)[1].split("</svg>", 1)[0]
    assert "<span" not in svg and "⟨U+202E⟩" in svg


def test_report_of_a_run_that_stopped_early() -> None:
    """A run that never reached validation shows no empty check, quarantine or change sections."""
    page = report_page("manual__2026-11-23T02:30:00+00:00",
                       hostile_run(run_id="x", error=None, status="running", stage_seconds={}, dq_success=None,
                                   attempts=[], warnings=[]))
    for text in ("No data-quality checks ran", "No alerts were sent.", ">running<", ">not run<"):
        assert text in page, text
    for text in ("Quarantined rows", "Biggest stock changes", "Distribution of changes"):
        assert text not in page, text


def test_plan_page() -> None:
    stopping = [Guardrail(name="max_zeroed_share", value=0.4, limit=0.05, success=False,
                          observed=f"0.4 > 0.05 {HOSTILE}")]
    page = plan_page(HOSTILE, [[HOSTILE, 1, 5, 0, 5, 4, "changed"], ["SKU-0000002", 3, 3, 0, 3, 0, "unchanged"]],
                     total=7000, stopping=stopping)
    assert_inert(page)
    for text in ("Nothing was written to the shop. 7,000 SKUs planned.", "A real run with these parameters would stop",
                 "<code>max_zeroed_share</code>", "Showing the 2 biggest changes of 7,000 SKUs planned",
                 ">WMS available</th>", "<td><code>SKU-0000002</code></td>"):
        assert text in page, text


def test_runs_page_links_reports_and_escapes_every_column(tmp_path: Path) -> None:
    from include.stocksync.store.db import run_key

    runs = [hostile_run(run_id=STORED),
            hostile_run(run_id="manual__1", status="dry_run", dq_success=None, freeze_seconds=None, error=None,
                        triggered_by="admin", override_reason=None)]
    (tmp_path / run_key("manual__1")).mkdir()
    (tmp_path / run_key("manual__1") / "report.html").write_text("x")
    page = render_runs_page(runs, tmp_path, base="")
    assert_inert(page)
    assert f'href="reports/{run_key("manual__1")}/report.html" title="manual__1"><code>manual__1</code></a>' in page
    assert f'href="reports/{run_key(STORED)}' not in page  # no report on disk: the run's own page instead
    assert 'class="badge plan"' in page and ">dry run<" in page and ">check failed<" in page
    assert ">never closed (dry run)<" in page
    assert f"validate: {ESCAPED_SCRIPT}⟨U+202E⟩" in page  # the first cause in full as a tooltip, as text
    assert 'href="/dags/inventory_full_push/runs/manual__1"' in page  # its Airflow run
    assert "No sync runs yet." in render_runs_page([], tmp_path)


def test_no_report_refused_and_error_pages() -> None:
    assert_inert(render_no_report_page("inventory_nightly_sync", HOSTILE))
    pending = render_no_report_page("inventory_nightly_sync", HOSTILE, "running")
    assert "No sync report for this run" in pending and ">running<" in pending and "has no report yet" in pending

    alerts = [{"sent_at": NOW, "task_id": "freeze_checkout", "try_number": 1, "target": "stocksync_alerts/alerts",
               "delivered": True, "delivery_error": None, "error": f"unknown run parameter(s): {HOSTILE}"}]
    refused = render_refused_page("inventory_full_push", HOSTILE, alerts, taken=True, owner="inventory_nightly_sync")
    assert_inert(refused)
    for text in ("Run refused: no sync report", ">refused<", "freeze_checkout", "already the record of a stock sync "
                 "run of <code>inventory_nightly_sync</code>", f"unknown run parameter(s): {ESCAPED_SCRIPT}"):
        assert text in refused, text
    unnamed = render_refused_page("inventory_full_push", "r1", [], taken=True)
    assert "another DAG" in unnamed and "No failure alert has been recorded" in unnamed

    error = render_error_page(404, f"Report not found {SCRIPT}")
    assert "<h1>Not found</h1>" in error and ESCAPED_SCRIPT in error and "<script" not in error


def test_one_status_vocabulary() -> None:
    assert {"applied", "duplicate", "dry_run", "failed", "running", "refused"} <= set(RUN_STATUSES)
    assert run_status("applied").kind == "ok" and run_status("failed").kind == "bad"
    assert run_status("running").kind == "run" and run_status("something_new").text == "something_new"
    assert check_result(False, "overridden").text == "FAILED (overridden)"
    assert check_result(False, "quarantine").text == "FAILED: rows quarantined"
    assert check_result(False, "fail").text == "FAILED" and check_result(True, "fail").text == "passed"
    assert run_status("dry_run").text == "dry run" and run_status("dry_run").kind == "plan"  # a plan, not green
    assert run_status("abandoned").kind == "bad"


def test_policies_allow_no_script_and_only_same_origin_framing() -> None:
    directives = {d.split()[0]: d for d in CONTENT_SECURITY_POLICY.split("; ")}
    assert directives["default-src"] == "default-src 'none'"
    assert "script-src" not in directives  # falls back to default-src 'none'
    assert directives["frame-ancestors"] == "frame-ancestors 'self'"
    # never allow-scripts; forms (GET filters) may submit, to our own origin only
    assert directives["sandbox"].split() == ["sandbox", "allow-same-origin", "allow-forms"]
    assert directives["form-action"] == "form-action 'self'"
    assert SECURITY_HEADERS["X-Content-Type-Options"] == "nosniff"
    assert SECURITY_HEADERS["X-Frame-Options"] == "SAMEORIGIN"
    # a <meta> policy ignores these two; a report opened from disk still allows no script
    assert "sandbox" not in META_CONTENT_SECURITY_POLICY and "frame-ancestors" not in META_CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in META_CONTENT_SECURITY_POLICY


def test_error_page_template_renders_status() -> None:
    assert "HTTP 503" in render("error.html", status_code=503, title="Shop database unreachable", message="x")


def test_report_files_and_folders_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        folder = private_folder(tmp_path / "reports" / "0123456789abcdef")
        with private_file(folder / "report.html") as fh:
            fh.write("<p>first</p>")
        folder.chmod(0o755)  # a folder from before: made private again on the next write
        private_folder(folder)
        with private_file(folder / "report.html") as fh:
            fh.write("<p>second</p>")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "report.html").stat().st_mode) == 0o600
    assert (folder / "report.html").read_text() == "<p>second</p>"
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]  # no partial left behind

    with pytest.raises(RuntimeError), private_file(folder / "report.html") as fh:
        fh.write("<p>half")
        raise RuntimeError("the render failed")
    assert (folder / "report.html").read_text() == "<p>second</p>"  # the old page stands whole
    assert sorted(p.name for p in folder.iterdir()) == ["report.html"]


def clean_profile(rows: int) -> Any:
    """A measured snapshot of `rows` rows with every column the suite expects and nothing wrong."""
    from include.stocksync.sync import validate

    columns = ["row_no", "sku", *[c for n in validate.NUMERIC_COLUMNS for c in (n, f"{n}_num")],
               "known_sku", "available_consistent"]
    return validate.Profile(rows, columns, dict.fromkeys(columns, 0), {}, set())


def test_the_validation_record_beside_the_reports_is_private(tmp_path: Path) -> None:
    """Validation may be the first to write under the reports folder (GX's suite and results, which
    hold WMS values): the folder is created 0700 and nothing under it is open to other users, also
    under the usual umask 022 and when GX's folder was left 0755 by an older version."""
    from include.stocksync.config.settings import load_settings
    from include.stocksync.sync import validate

    reports = tmp_path / "reports"
    settings = load_settings(environ={"STOCKSYNC_REPORTS_DIR": str(reports)})
    profile = clean_profile(3)
    old_umask = os.umask(0o022)
    try:
        first = validate.run_suite(profile, settings, 3, "scheduled__first")
        (reports / "gx").chmod(0o755)
        validate.run_suite(profile, settings, 3, "scheduled__second")
    finally:
        os.umask(old_umask)
    assert first and all(check.success for check in first)
    written = [reports, *reports.rglob("*")]
    assert any(p.suffix == ".json" for p in written)  # GX did write its suite and results there
    assert [f"{oct(stat.S_IMODE(p.stat().st_mode))} {p}" for p in written if p.stat().st_mode & 0o077] == []


def test_the_stored_suite_is_the_one_judged_and_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    """Each run stores the suite it judges by: the same suite is not written again; a suite that
    changed (here the catalog's size, which bounds the row count) replaces the stored one."""
    import json

    from include.stocksync.config.settings import load_settings
    from include.stocksync.sync import validate

    settings = load_settings(environ={"STOCKSYNC_REPORTS_DIR": str(tmp_path / "reports")})
    profile = clean_profile(3)

    def stored() -> tuple[int, dict[str, object]]:
        [path] = (tmp_path / "reports").rglob("wms_counts.json")
        kwargs = next(e["kwargs"] for e in json.loads(path.read_text())["expectations"]
                      if e["type"] == "expect_table_row_count_to_be_between")
        return path.stat().st_mtime_ns, kwargs

    first = validate.run_suite(profile, settings, 3, "scheduled__first")
    written, bounds = stored()
    assert 1 <= bounds["min_value"] <= 3 <= bounds["max_value"]  # a band around the 3 SKUs on sale
    again = validate.run_suite(profile, settings, 3, "scheduled__second")
    assert stored() == (written, bounds)
    assert [c.success for c in again] == [c.success for c in first] and all(c.success for c in first)
    bigger = validate.run_suite(profile, settings, 1000, "scheduled__third")
    rewritten, bounds = stored()
    assert rewritten != written and 3 < bounds["min_value"] <= 1000 <= bounds["max_value"]
    assert not next(c for c in bigger if c.check == "row_count").success  # 3 rows of a 1000-SKU catalog


def test_plan_browser_keeps_the_sku_filter_and_plan_rows_as_text() -> None:
    """The SKU typed into the filter comes back in the page (the form's value, the pager's links)
    and the plan's SKUs come from the WMS: both stay text."""
    from plugins.stocksync_plugin import render_plan_browser

    rows = [{"sku": HOSTILE, "current_qty": 5, "wms_available": 0, "adjustment": 0, "new_qty": 0, "delta": -5,
             "outcome": "changed"}]
    page = render_plan_browser("inventory_full_push", HOSTILE, rows, 250, outcomes=[("changed", 250)],
                               outcome="changed", sku=STORED, zeroed=True, page=2, source="plan.csv",
                               report_href=None)
    assert_inert(page)
    assert "SKUs 101–101 of 250" in page and "page 2 of 3" in page and "(from plan.csv)" in page
    # in an attribute the marker is plain text: a <span> there would end the attribute
    assert f'name="sku" value="{ESCAPED_SCRIPT}⟨U+202E⟩gpj.exe' in page
    assert '?outcome=changed&amp;sku=%3Cimg' in page and "zeroed=1" in page  # the pager keeps the filters


def test_a_caption_counts_the_bars_its_chart_draws() -> None:
    """A dry run whose plan zeroes 200 SKUs: the report lists 50, the chart draws the 15 biggest;
    the caption says 15 of 200, never 50 of 200 over 15 bars."""
    zeroed = [{"sku": f"SKU-{n:04d}", "old_qty": 100 - n, "new_qty": 0, "total": 200} for n in range(50)]
    run = hostile_run(run_id="manual__z", status="dry_run", dq_success=True, error=None, quarantined=0,
                      override_reason=None,
                      guardrails=[{"name": "max_zeroed_share", "success": False, "observed": "200 SKUs to 0"}],
                      options={"dry_run": True})
    page = report_page("manual__z", run, zeroed=zeroed, zeroed_total=200)
    caption = re.search(r'id="zeroed-caption">(.*?)</p>', page, re.S)
    assert caption is not None and "the 15 biggest of 200 drawn" in caption.group(1), caption
    chart = page.split('aria-label="SKUs that would drop to zero', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<rect") - chart.count('class="rerun"') >= 15 and "SKU-0014" in chart and "SKU-0015" not in chart


def test_each_runs_page_row_shows_its_own_run_figures(tmp_path: Path) -> None:
    """Rows of a push that moved +50 units, an intraday run that moved −10, and a dry run that would
    change 7 SKUs: each row's Stock cell and sentence carry that run's own figures (the columns
    select_runs_page.sql reads from the run's audit rows or its recorded plan)."""
    base = {"stage_seconds": {}, "warnings": [], "attempts": [], "error": None, "first_error": None,
            "dq_success": True, "quarantined": 0, "freeze_seconds": 1.0, "guardrails": [], "options": {},
            "triggered_by": "ops", "override_reason": None, "alerts": 0}
    runs = [hostile_run(**{**base, "run_id": "manual__push", "dag_id": "inventory_full_push", "status": "applied",
                           "skus_moved": 2, "units_up": 50, "units_down": 0}),
            hostile_run(**{**base, "run_id": "scheduled__intraday", "dag_id": "inventory_intraday_sync",
                           "status": "applied", "skus_moved": 1, "units_up": 0, "units_down": 10, "quarantined": 3}),
            hostile_run(**{**base, "options": {"dry_run": True}, "run_id": "manual__dry", "status": "dry_run",
                           "skus_moved": 7, "units_up": 12, "units_down": 30})]
    page = render_runs_page(runs, tmp_path, base="")
    rows = page.split("<tbody>", 1)[1].split("</tr>")
    cells = [re.sub(r"<[^>]+>", " ", r) for r in rows[:3]]
    assert "Applied: 2 SKUs changed (+50 units)." in cells[0] and "+50 units" in cells[0]
    assert "Applied: 1 SKU changed (−10 units). 3 WMS rows were quarantined (kept out of the load)." in cells[1]
    assert "would change" in cells[2] and "a real run would change 7 SKUs (+12 / −30 units)" in cells[2]
    assert "(no units)" not in page and "no units" not in " ".join(cells)
