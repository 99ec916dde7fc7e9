"""Per-run reports: self-contained HTML (no external CSS/JS: they render offline).

- `report.html`, written by the teardown for every run, successful or not, to
  `<reports_dir>/<run key>/`: the run summary, each data-quality check and guardrail, the
  quarantined rows, the biggest stock changes and a chart of the distribution of changes;
- `plan.csv` and `plan.html` for a dry run: SKU, current, WMS available, adjustment, new,
  delta, outcome;
- `gx_validation.html`: this run's Great Expectations Data Docs page (copied by validation).
"""

from __future__ import annotations

import csv
import html
import json
import os
from collections.abc import Sequence
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.db import query, run_key
from include.stocksync.settings import Settings

if TYPE_CHECKING:
    from include.stocksync.guardrails import Guardrail

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2733;max-width:80rem}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ccd3db;padding:.25rem .6rem;text-align:left}
th{background:#eef2f6} .ok{color:#17702f;font-weight:600} .bad{color:#b3261e;font-weight:600}
.warn{color:#8a5a00;font-weight:600} .num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f3f5f7;padding:0 .2rem;word-break:break-all}
"""
PLAN_HTML_ROWS = 5000


STAGE_ORDER = ("freeze", "extract", "validate", "merge", "load")


def ordered_stages(stage_seconds: dict[str, float] | None) -> list[tuple[str, float]]:
    """Stage durations in pipeline order (the JSON column keeps its own key order)."""
    items = (stage_seconds or {}).items()
    return sorted(items, key=lambda kv: (STAGE_ORDER.index(kv[0]) if kv[0] in STAGE_ORDER else 99, kv[0]))


def report_path(settings: Settings, run_id: str) -> Path:
    return settings.reports_path / run_key(run_id) / "report.html"


def report_file(run_id: str) -> str:
    """Where a run's report is on disk."""
    from include.stocksync.settings import load_settings

    return str(report_path(load_settings(), run_id))


def report_url(dag_id: str, run_id: str) -> str:
    """The run's page as served by the "Stock sync" plugin of this Airflow (login required): its
    report, or an HTML page saying why it has none (a run refused at its first task)."""
    from urllib.parse import quote

    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}/stocksync/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{_e(v)}</td>" if i in numeric else f"<td>{_e(v)}</td>"
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _bucket_label(bucket: int) -> str:
    if bucket == 0:
        return "0"
    low, high = 10 ** (abs(bucket) - 1), 10 ** abs(bucket) - 1
    if bucket > 0:
        return f"+{low}" if low == high else f"+{low}..+{high}"
    return f"-{low}" if low == high else f"-{high}..-{low}"


def histogram_svg(buckets: list[tuple[int, int]]) -> str:
    """An inline SVG bar chart of SKU counts per change bucket."""
    if not buckets:
        return "<p>No stock changed.</p>"
    width, height, bar_gap, left, bottom = 640, 220, 6, 50, 40
    top = max(n for _, n in buckets)
    bar = (width - left - 10) / len(buckets) - bar_gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="Distribution of stock changes">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#555"/>',
             f'<text x="4" y="14" font-size="11">SKUs (max {top})</text>']
    for i, (bucket, count) in enumerate(buckets):
        h = (height - bottom - 20) * count / top
        x = left + i * (bar + bar_gap)
        color = "#2f6fb3" if bucket > 0 else "#b3261e" if bucket < 0 else "#888"
        parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{_e(_bucket_label(bucket))}: {count} SKUs</title></rect>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom - h - 3:.1f}" font-size="10" '
                     f'text-anchor="middle">{count}</text>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" font-size="10" '
                     f'text-anchor="middle">{_e(_bucket_label(bucket))}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
                 "change in units (new - old)</text></svg>")
    return "".join(parts)


def render_report(conn: psycopg.Connection, run_id: str, directory: Path | None = None) -> str:
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
        checks = cur.execute(query("stocksync/select_dq_results"), {"run_id": run_id}).fetchall()
        changes = cur.execute(query("stocksync/select_biggest_changes"), {"run_id": run_id, "limit": 50}).fetchall()
        quarantined = cur.execute(query("stocksync/select_quarantine"), {"run_id": run_id, "limit": 500}).fetchall()
        alerts = cur.execute(query("stocksync/select_alerts"),
                             {"run_id": run_id, "dag_id": run["dag_id"] if run else None}).fetchall()
    with conn.cursor() as cur:
        buckets = [(int(b), int(n)) for b, n in cur.execute(query("stocksync/select_change_histogram"),
                                                               {"run_id": run_id}).fetchall()]
    if run is None:
        raise ValueError(f"no run record for {run_id}")
    status = run["status"]
    status_class = "ok" if status in ("applied", "duplicate", "dry_run") else "bad"
    summary_keys = ["dag_id", "status", "triggered_by", "override_reason", "started_at", "finished_at",
                    "freeze_mode", "adjustment_mode", "watermark_source", "watermark", "snapshot_id",
                    "snapshot_taken_at", "orders_counted_until", "pages", "extracted", "valid", "quarantined",
                    "changed", "unchanged", "stale", "clamped", "duplicate", "unknown", "freeze_seconds", "error"]
    summary = _table(["", ""], [[k, run.get(k)] for k in summary_keys])
    stages = _table(["stage", "seconds"], [[k, f"{v:.3f}"] for k, v in ordered_stages(run["stage_seconds"])], {1})
    if checks:
        def result_cell(c: dict[str, Any]) -> str:
            if c["success"]:
                return "<td class='ok'>passed</td>"
            if c["policy"] == "overridden":
                return "<td class='warn'>FAILED (overridden)</td>"
            return "<td class='bad'>FAILED</td>"

        check_rows = "".join(
            f"<tr><td>{_e(c['check_name'])}</td>{result_cell(c)}"
            f"<td>{_e(c['policy'])}</td><td>{_e(c['observed'])}</td>"
            f"<td><code>{_e(json.dumps(c['examples'], ensure_ascii=False)[:500])}</code></td></tr>"
            for c in checks)
        dq = ("<table><thead><tr><th>check</th><th>result</th><th>policy</th><th>observed</th>"
              f"<th>examples</th></tr></thead><tbody>{check_rows}</tbody></table>")
    else:
        dq = "<p>No data-quality checks ran (the run stopped before validation).</p>"
    docs = ""
    if directory is not None and (directory / "gx_validation.html").exists():
        docs = '<p>Great Expectations Data Docs for this run: <a href="gx_validation.html">gx_validation.html</a></p>'
    if directory is not None and (directory / "plan.html").exists():
        docs += '<p>Dry-run plan: <a href="plan.html">plan.html</a>, <a href="plan.csv">plan.csv</a></p>'
    quarantine = (_table(["row", "sku", "reasons", "raw values"],
                         [[q["row_no"], q["sku"], ", ".join(q["reasons"]), json.dumps(q["raw"], ensure_ascii=False)]
                          for q in quarantined])
                  if quarantined else "<p>No rows were quarantined.</p>")
    change_table = _table(["sku", "old", "WMS available", "adjustment", "new", "delta", "outcome"],
                          [[c["sku"], c["old_qty"], c["wms_available"], c["adjustment"], c["new_qty"], c["delta"],
                            c["outcome"]] for c in changes], {1, 2, 3, 4, 5}) if changes else "<p>No stock changed.</p>"
    error = f'<p class="bad">{_e(run["error"])}</p>' if run["error"] else ""
    alert_table = (_table(["sent at (UTC)", "task", "try", "to", "delivered", "error reported"],
                          [[a["sent_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), a["task_id"],
                            a["try_number"], a["target"],
                            "yes" if a["delivered"] else f"NO: {a['delivery_error']}", (a["error"] or "")[:500]]
                           for a in alerts])
                   if alerts else "<p>No alerts were sent.</p>")
    body = f"""<h1>stocksync run <code>{_e(run_id)}</code>: <span class="{status_class}">{_e(status)}</span></h1>
{error}
<h2>Summary</h2>{summary}
<h2>Stage durations</h2>{stages}
<h2>Data quality</h2>{docs}{dq}
<h2>Quarantined rows</h2>{quarantine}
<h2>Distribution of changes</h2>{histogram_svg(buckets)}
<h2>Biggest stock changes</h2>{change_table}
<h2>Alerts sent</h2>{alert_table}"""
    return _page(f"stocksync run {run_id}", body)


def write_report(conn: psycopg.Connection, settings: Settings, run_id: str) -> Path:
    """(Re)write the run's report. The teardown and the failure notifier both write it; a lock
    per run orders them, and the file is replaced whole, so a reader never sees half a page."""
    path = report_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn.execute(query("stocksync/lock_run_report"), {"run_id": run_id})
        page = render_report(conn, run_id, path.parent)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    finally:
        conn.commit()  # releases the lock
    return path


def write_plan_report(conn: psycopg.Connection, settings: Settings, run_id: str, plan_table: str,
                      stopping: Sequence[Guardrail] = ()) -> Path:
    """`plan.csv` (every SKU) and `plan.html` (the biggest changes first) for a dry run;
    `stopping` are the guardrails that would stop a real run with the same parameters."""
    directory = report_path(settings, run_id).parent
    directory.mkdir(parents=True, exist_ok=True)
    headers = ["sku", "current", "wms_available", "adjustment", "new", "delta", "outcome"]
    html_rows: list[list[Any]] = []
    total = 0
    with conn.cursor() as cur, (directory / "plan.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        cur.execute(query("stocksync/select_plan_rows", plan=plan_table))
        for row in cur:
            writer.writerow(row)
            if total < PLAN_HTML_ROWS:
                html_rows.append(list(row))
            total += 1
    conn.commit()
    note = (f"<p>Showing the {PLAN_HTML_ROWS} biggest changes of {total}; plan.csv has every SKU.</p>"
            if total > PLAN_HTML_ROWS else "")
    warning = ""
    if stopping:
        items = "".join(f"<li><code>{_e(g.name)}</code>: {_e(g.observed)}</li>" for g in stopping)
        warning = (f'<div class="bad"><p><strong>A real run with these parameters would stop: guardrails '
                   f"tripped.</strong></p><ul>{items}</ul><p>If this plan is right (after a stock take, say), "
                   "trigger the push with <code>override_guardrails</code> and an <code>override_reason</code>."
                   "</p></div>")
    body = (f"<h1>Dry-run plan for <code>{_e(run_id)}</code></h1><p>Nothing was written to the shop. "
            f"{total} SKUs planned.</p>{warning}{note}" + _table(headers, html_rows, {1, 2, 3, 4, 5}))
    (directory / "plan.html").write_text(_page(f"stocksync plan {run_id}", body), encoding="utf-8")
    return directory / "plan.html"
