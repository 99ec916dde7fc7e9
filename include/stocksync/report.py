"""The per-run report: a self-contained HTML page (no external CSS/JS, renders offline).

Written by the teardown for every run, successful or not, to
`<reports_dir>/<run key>/report.html`: the run summary, each data-quality check, and
the biggest stock changes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from include.stocksync.db import query, run_key
from include.stocksync.settings import Settings

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2733}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{border:1px solid #ccd3db;padding:.25rem .6rem;text-align:left}
th{background:#eef2f6} .ok{color:#17702f;font-weight:600} .bad{color:#b3261e;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums} code{background:#f3f5f7;padding:0 .2rem}
"""


def report_path(settings: Settings, run_id: str) -> Path:
    return settings.reports_path / run_key(run_id) / "report.html"


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


def render_report(conn: psycopg.Connection, run_id: str) -> str:
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
        checks = cur.execute(query("stocksync/select_dq_results"), {"run_id": run_id}).fetchall()
        changes = cur.execute(query("stocksync/select_biggest_changes"), {"run_id": run_id, "limit": 50}).fetchall()
    conn.commit()
    if run is None:
        raise ValueError(f"no run record for {run_id}")
    status = run["status"]
    status_class = "ok" if status in ("applied", "duplicate", "dry_run") else "bad"
    summary_keys = ["dag_id", "status", "started_at", "finished_at", "freeze_mode", "adjustment_mode",
                    "watermark_source", "watermark", "snapshot_id", "snapshot_taken_at", "orders_counted_until",
                    "pages", "extracted", "valid", "changed", "unchanged", "stale", "clamped", "duplicate",
                    "unknown", "freeze_seconds", "triggered_by", "override_reason", "error"]
    summary = _table(["", ""], [[k, run.get(k)] for k in summary_keys])
    stages = _table(["stage", "seconds"], [[k, f"{v:.3f}"] for k, v in (run["stage_seconds"] or {}).items()], {1})
    if checks:
        check_rows = "".join(
            f"<tr><td>{_e(c['check_name'])}</td>"
            f"<td class='{'ok' if c['success'] else 'bad'}'>{'passed' if c['success'] else 'FAILED'}</td>"
            f"<td>{_e(c['policy'])}</td><td>{_e(c['observed'])}</td>"
            f"<td><code>{_e(json.dumps(c['examples'], ensure_ascii=False)[:500])}</code></td></tr>"
            for c in checks)
        dq = ("<table><thead><tr><th>check</th><th>result</th><th>policy</th><th>observed</th>"
              f"<th>examples</th></tr></thead><tbody>{check_rows}</tbody></table>")
    else:
        dq = "<p>No data-quality checks ran (the run stopped before validation).</p>"
    change_table = _table(["sku", "old", "WMS available", "adjustment", "new", "delta", "outcome"],
                          [[c["sku"], c["old_qty"], c["wms_available"], c["adjustment"], c["new_qty"], c["delta"],
                            c["outcome"]] for c in changes], {1, 2, 3, 4, 5}) if changes else "<p>No stock changed.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>stocksync run {_e(run_id)}</title><style>{STYLE}</style></head>
<body>
<h1>stocksync run <code>{_e(run_id)}</code>: <span class="{status_class}">{_e(status)}</span></h1>
{f'<p class="bad">{_e(run["error"])}</p>' if run["error"] else ''}
<h2>Summary</h2>{summary}
<h2>Stage durations</h2>{stages}
<h2>Data quality</h2>{dq}
<h2>Biggest stock changes</h2>{change_table}
</body></html>
"""


def write_report(conn: psycopg.Connection, settings: Settings, run_id: str) -> Path:
    path = report_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(conn, run_id), encoding="utf-8")
    return path
