"""Hostile text through the real pipeline (`dag.test()`, the WMS service, the shop DB) into the
files runs write and the pages the plugin renders from the database.

A WMS SKU and run parameters carry a script payload and a right-to-left override; the report,
plan and refused-run page must show them as text with the override as a visible marker. Report
folders and files must be private, and no Great Expectations Data Docs page (WMS text raw,
scripts from CDNs) may be produced.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from include.stocksync.store.db import connect, run_key
from include.stocksync.sync.pipeline import get_run
from tests.conftest import fresh_dag, shop_in_line_with_wms
from tests.integration.test_nightly_sync import run_nightly

pytestmark = pytest.mark.slow

SCRIPT = "<img src=x onerror=alert(1)><script>alert(1)</script>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
RLO = "\u202e"
HOSTILE_SKU = f"{SCRIPT}{RLO}gpj.exe"
RLO_MARKER = '<span class="cc">⟨U+202E⟩</span>'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def section(page: str, title: str) -> str:
    return page.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]


def test_wms_sku_with_a_script_and_a_bidi_override_is_shown_as_text(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                                    wms: Any) -> None:
    from airflow.utils.state import DagRunState

    shop_in_line_with_wms(clean_shop, wms, 200, 24, drift_share=0.1)  # 1 odd SKU of 200: under the 1% limit
    wms.admin.faults(sku_rename={"SKU-0000030": HOSTILE_SKU})

    dag_run = run_nightly(dagbag, {"page_size": 100})

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)
    assert run["quarantined"] == 1
    with connect(stocksync_dsn) as conn:  # stored as received: escaping is the page's job
        assert conn.execute("SELECT sku FROM stocksync.quarantine WHERE run_id = %s",
                            (dag_run.run_id,)).fetchall() == [(HOSTILE_SKU,)]
    report = Path(run["report_path"])
    page = report.read_text(encoding="utf-8")
    quarantined = section(page, "Quarantined rows")
    assert f"<code>{ESCAPED}{RLO_MARKER}gpj.exe</code>" in quarantined
    assert "sku_format[sku]" in quarantined and "unknown_sku[sku]" in quarantined
    assert ESCAPED in section(page, "Data quality")  # the checks' examples
    assert "<script" not in page and "<img" not in page and RLO not in page

    assert mode(report.parent) == 0o700 and mode(report) == 0o600
    reports = report.parent.parent
    assert not list(reports.rglob("gx_validation.html"))
    data_docs = reports / "gx" / "uncommitted" / "data_docs"
    assert not [p for p in data_docs.rglob("*") if run_key(dag_run.run_id) in str(p)], "GX Data Docs were built"


def test_push_parameters_are_shown_as_text_in_the_report_and_plan(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                                  wms: Any) -> None:
    from airflow.utils.state import DagRunState

    shop_in_line_with_wms(clean_shop, wms, 40, 25, drift_share=0.5)
    reason = f"stock take {SCRIPT}\nsecond line"

    dag_run = fresh_dag(dagbag, "inventory_full_push").test(
        run_conf={"dry_run": True, "override_guardrails": True, "override_reason": reason})

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(stocksync_dsn, dag_run.run_id)
    assert run["status"] == "dry_run" and run["override_reason"] == reason
    report = Path(run["report_path"])
    page = report.read_text(encoding="utf-8")
    assert f"stock take {ESCAPED}" in section(page, "Run details") and "<script" not in page
    assert '<a href="plan.html">Plan summary (plan.html)</a>' in page
    folder = report.parent
    plan = (folder / "plan.html").read_text(encoding="utf-8")
    assert "Nothing was written to the shop" in plan and "<script" not in plan
    assert mode(folder) == 0o700
    assert {name: mode(folder / name) for name in ("report.html", "plan.html", "plan.csv")} == {
        "report.html": 0o600, "plan.html": 0o600, "plan.csv": 0o600}
    assert sorted(p.name for p in folder.iterdir()) == ["plan.csv", "plan.html", "report.html"]


def test_refused_push_page_shows_the_recorded_error_as_text(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any,
                                                             webhook: Any) -> None:
    """A push refused at its first task (a SKU with a bidi override) has no record and no report;
    its page, rendered from `stocksync.alerts`, shows the error with the payload as text."""
    from airflow.utils.state import DagRunState

    from include.stocksync.config.settings import process_settings
    from plugins.stocksync_plugin import fetch_run, render_refused_page

    shop_in_line_with_wms(clean_shop, wms, 40, 26, drift_share=0.1)

    dag_run = fresh_dag(dagbag, "inventory_full_push").test(run_conf={"dry_run": True, "skus": [HOSTILE_SKU]})

    assert dag_run.state == DagRunState.FAILED
    with pytest.raises(LookupError):
        get_run(stocksync_dsn, dag_run.run_id)
    record, alerts = fetch_run(process_settings(), "inventory_full_push", dag_run.run_id)
    assert record is None and [a["task_id"] for a in alerts] == ["freeze_checkout"]
    assert "cannot be a SKU" in alerts[0]["error"]
    page = render_refused_page("inventory_full_push", dag_run.run_id, alerts)
    assert "Run refused: no sync report" in page and ESCAPED in page
    assert "<script" not in page and RLO not in page
