"""Per-run reports, rendered from the templates in `include/stocksync/templates/` (`pages.py`):
self-contained HTML with no script and nothing external, so they render offline, and WMS text in
them stays text.

- `report.html`, written by the teardown for every run, successful or not, to
  `<reports_dir>/<run key>/`: the run summary, each data-quality check and guardrail (from
  `stocksync.dq_results`), the quarantined rows, the biggest stock changes, a chart of the
  distribution of changes and the alerts sent;
- `plan.csv` and `plan.html` for a dry run: SKU, current, WMS available, adjustment, new,
  delta, outcome.

Run folders are created 0700 and the files 0600: they hold shop stock and WMS data, and the Airflow
plugin (same user as the workers) is the way to share them, with Airflow's permissions.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import psycopg
from psycopg.rows import dict_row

from include.stocksync.db import query, run_key
from include.stocksync.pages import render
from include.stocksync.settings import Settings

if TYPE_CHECKING:
    from include.stocksync.guardrails import Guardrail

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


SUMMARY_KEYS = ("dag_id", "status", "triggered_by", "override_reason", "started_at", "finished_at", "freeze_mode",
                "adjustment_mode", "watermark_source", "watermark", "snapshot_id", "snapshot_taken_at",
                "orders_counted_until", "pages", "extracted", "valid", "quarantined", "changed", "unchanged", "stale",
                "clamped", "duplicate", "unknown", "freeze_seconds", "error")
PLAN_HEADERS = ("sku", "current", "wms_available", "adjustment", "new", "delta", "outcome")


def _bucket_label(bucket: int) -> str:
    if bucket == 0:
        return "0"
    low, high = 10 ** (abs(bucket) - 1), 10 ** abs(bucket) - 1
    if bucket > 0:
        return f"+{low}" if low == high else f"+{low}..+{high}"
    return f"-{low}" if low == high else f"-{high}..-{low}"


def histogram(buckets: list[tuple[int, int]]) -> dict[str, Any] | None:
    """The geometry of the bar chart of SKU counts per change bucket (`histogram.svg` draws it):
    numbers only, computed here so the template holds no arithmetic on data."""
    if not buckets:
        return None
    width, height, bar_gap, left, bottom = 640, 220, 6, 50, 40
    top = max(n for _, n in buckets)
    bar = (width - left - 10) / len(buckets) - bar_gap
    bars = []
    for i, (bucket, count) in enumerate(buckets):
        h = (height - bottom - 20) * count / top if top else 0.0
        x = left + i * (bar + bar_gap)
        bars.append({"x": x, "y": height - bottom - h, "width": bar, "height": h, "center": x + bar / 2,
                     "count": int(count), "label": _bucket_label(int(bucket)),
                     "color": "#2f6fb3" if bucket > 0 else "#b3261e" if bucket < 0 else "#888"})
    return {"width": width, "height": height, "left": left, "axis_y": height - bottom, "top": top, "bars": bars}


def report_page(run_id: str, run: dict[str, Any], *, checks: Sequence[dict[str, Any]] = (),
                changes: Sequence[dict[str, Any]] = (), quarantined: Sequence[dict[str, Any]] = (),
                alerts: Sequence[dict[str, Any]] = (), buckets: Sequence[tuple[int, int]] = (),
                has_plan: bool = False) -> str:
    """The run report's HTML from the rows `render_report` reads (pure: the unit tests call it)."""
    return render(
        "report.html", run_id=run_id, run=run,
        summary=[(key, run.get(key)) for key in SUMMARY_KEYS],
        stages=ordered_stages(run.get("stage_seconds")),
        checks=[{**c, "examples": json.dumps(c.get("examples"), ensure_ascii=False)[:500]} for c in checks],
        quarantined=[{**q, "raw": json.dumps(q.get("raw"), ensure_ascii=False)} for q in quarantined],
        histogram=histogram(list(buckets)), changes=list(changes), alerts=list(alerts), has_plan=has_plan)


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
    has_plan = directory is not None and (directory / "plan.html").exists()
    return report_page(run_id, run, checks=checks, changes=changes, quarantined=quarantined, alerts=alerts,
                       buckets=buckets, has_plan=has_plan)


def plan_page(run_id: str, rows: Sequence[Sequence[Any]], total: int, stopping: Sequence[Guardrail] = ()) -> str:
    """The dry-run plan's HTML: `rows` (the biggest changes first) of `total` planned SKUs, and the
    guardrails that would stop a real run (pure: the unit tests call it)."""
    return render("plan.html", run_id=run_id, headers=PLAN_HEADERS, rows=list(rows), total=total,
                  stopping=list(stopping))


def private_folder(directory: Path) -> Path:
    """`directory` (a run's report folder) made, or made again, 0700; the reports folder above it
    is created 0700 when it does not exist yet (an existing one keeps the mode it was given)."""
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode goes through the umask, and older folders were 0755
    return directory


@contextmanager
def private_file(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """Write `path` as a 0600 file that replaces the old one whole when the block ends, so a
    reader never sees half a page and nobody else can read it in between."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover partial from a killed writer may have had another mode
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_report(conn: psycopg.Connection, settings: Settings, run_id: str) -> Path:
    """(Re)write the run's report. The teardown and the failure notifier both write it; a lock
    per run orders them, and the file is replaced whole, so a reader never sees half a page."""
    path = report_path(settings, run_id)
    private_folder(path.parent)
    try:
        conn.execute(query("stocksync/lock_run_report"), {"run_id": run_id})
        page = render_report(conn, run_id, path.parent)
        with private_file(path) as fh:
            fh.write(page)
    finally:
        conn.commit()  # releases the lock
    return path


def write_plan_report(conn: psycopg.Connection, settings: Settings, run_id: str, plan_table: str,
                      stopping: Sequence[Guardrail] = ()) -> Path:
    """`plan.csv` (every SKU) and `plan.html` (the biggest changes first) for a dry run;
    `stopping` are the guardrails that would stop a real run with the same parameters."""
    directory = private_folder(report_path(settings, run_id).parent)
    html_rows: list[list[Any]] = []
    total = 0
    with conn.cursor() as cur, private_file(directory / "plan.csv", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PLAN_HEADERS)
        cur.execute(query("stocksync/select_plan_rows", plan=plan_table))
        for row in cur:
            writer.writerow(row)
            if total < PLAN_HTML_ROWS:
                html_rows.append(list(row))
            total += 1
    conn.commit()
    with private_file(directory / "plan.html") as fh:
        fh.write(plan_page(run_id, html_rows, total, stopping))
    return directory / "plan.html"
