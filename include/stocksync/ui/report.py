"""Per-run reports, rendered from the templates in `include/stocksync/ui/templates/` (`pages.py`):
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

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import psycopg
from psycopg.rows import dict_row

from include.stocksync.config.settings import Settings
from include.stocksync.domain.csv_cells import csv_writer
from include.stocksync.runs.checks import with_sku_examples
from include.stocksync.runs.reports import private_folder, report_path
from include.stocksync.runs.uow import committed
from include.stocksync.store.db import query
from include.stocksync.ui.pages import render

if TYPE_CHECKING:
    from include.stocksync.sync.guardrails import Guardrail

PLAN_HTML_ROWS = 500  # plan.html: the biggest changes; the plugin's plan browser has all


STAGE_ORDER = ("freeze", "extract", "validate", "merge", "load")


def ordered_stages(stage_seconds: dict[str, float] | None) -> list[tuple[str, float]]:
    """Stage durations in pipeline order (the JSON column keeps its own key order)."""
    items = (stage_seconds or {}).items()
    return sorted(items, key=lambda kv: (STAGE_ORDER.index(kv[0]) if kv[0] in STAGE_ORDER else 99, kv[0]))


PLAN_HEADERS = ("sku", "current", "wms_available", "adjustment", "new", "delta", "outcome")
# how pages head the plan's columns (plan.csv keeps the names above)
PLAN_LABELS = ("SKU", "Current", "WMS available", "Adjustment", "New", "Change", "Outcome")
OUTCOME_LABELS = {"changed": "would change", "unchanged": "unchanged", "clamped": "clamped to 0",
                  "stale": "stale (older WMS sequence)", "unknown": "unknown to the shop",
                  "duplicate": "duplicate snapshot"}
APPLIED_OUTCOME_LABELS = {**OUTCOME_LABELS, "changed": "changed"}
BIGGEST_CHANGES = 50
PLAN_PAGE_ROWS = 500


# plain labels of the run record, in reading order: (label, column, how to show it)
FACTS: tuple[tuple[str, str, str], ...] = (
    ("DAG", "dag_id", "dag"), ("Run id", "run_id", "code"), ("Triggered by", "triggered_by", "text"),
    ("Parameters", "options", "options"), ("Override reason", "override_reason", "multiline"),
    ("Started", "started_at", "time"), ("Finished", "finished_at", "time"), ("Duration", "duration", "seconds"),
    ("Freeze mode", "freeze_mode", "text"), ("Checkout", "checkout", "text"),
    ("Adjustment mode", "adjustment_mode", "text"), ("Watermark source", "watermark_source", "text"),
    ("Watermark", "watermark", "time"), ("WMS snapshot", "snapshot_id", "code"),
    ("Snapshot taken at", "snapshot_taken_at", "time"), ("WMS counted orders until", "orders_counted_until", "time"),
    ("Pages read", "pages", "number"), ("Rows extracted", "extracted", "number"), ("Rows valid", "valid", "number"),
    ("Rows quarantined", "quarantined", "number"), ("SKUs changed", "changed", "number"),
    ("SKUs unchanged", "unchanged", "number"), ("SKUs clamped to 0", "clamped", "number"),
    ("SKUs stale", "stale", "number"), ("SKUs duplicate", "duplicate", "number"),
    ("SKUs unknown to the shop", "unknown", "number"),
)


def histogram(buckets: list[tuple[int, int]]) -> dict[str, Any] | None:
    """The geometry of the bar chart of SKU counts per change bucket (charts.histogram)."""
    from include.stocksync.ui.charts import histogram as draw

    return draw(buckets)


def _duration(run: dict[str, Any]) -> float | None:
    """From the start to the teardown's close (a failed step sets finished_at at its first failure;
    the retries and the release come after it)."""
    started, ended = run.get("started_at"), run.get("closed_at") or run.get("finished_at")
    return (ended - started).total_seconds() if started and ended else None


def _checks(checks: Sequence[dict[str, Any]], dry_run: bool = False) -> tuple[list[dict[str, Any]],
                                                                             list[dict[str, Any]]]:
    """(the checks to look at, the ones that passed clean). To look at, in this order: failed
    ones that stop a run, failed quarantine checks, overridden guardrails, and quarantine checks
    that passed within their limit but kept rows out (they have examples). Each gets its `result`
    label and its examples as short JSON."""
    from include.stocksync.ui.pages import CHECK_RESULTS, Label, check_result

    kept_out = Label("passed, rows quarantined", "warn", CHECK_RESULTS["quarantined"].meaning)
    would_stop = Label("would stop a real run", "warn", "a dry run goes on; a real run would stop here")
    order = {"fail": 0, "quarantine": 1, "overridden": 2}
    attention, clean = [], []
    for c in checks:
        shown = {**c, "examples": _examples(c.get("examples")), "name": str(c["check_name"]).removeprefix("guardrail:"),
                 "guardrail": str(c["check_name"]).startswith("guardrail:")}
        quarantining = c["success"] and c.get("policy") == "quarantine" and isinstance(c.get("examples"), list) \
            and bool(c.get("examples"))
        shown["result"] = kept_out if quarantining else would_stop if dry_run and shown["guardrail"] \
            and not c["success"] and c.get("policy") != "overridden" else check_result(c["success"], c.get("policy"))
        (attention if not c["success"] or quarantining else clean).append(shown)
    attention.sort(key=lambda c: (c["success"], order.get(c.get("policy") or "fail", 3), c["check_name"]))
    return attention, clean


def _examples(examples: Any) -> str | None:
    if examples in (None, [], {}):
        return None
    if isinstance(examples, dict) and set(examples) <= {"value", "limit"}:
        return None  # a guardrail's figures: its `observed` says them in words
    return json.dumps(examples, ensure_ascii=False)[:500]


def report_page(run_id: str, run: dict[str, Any], *, checks: Sequence[dict[str, Any]] = (),
                changes: Sequence[dict[str, Any]] = (), quarantined: Sequence[dict[str, Any]] = (),
                alerts: Sequence[dict[str, Any]] = (), buckets: Sequence[tuple[int, int]] = (),
                has_plan: bool = False, has_plan_table: bool = False, movement: dict[str, Any] | None = None,
                outcomes: Sequence[tuple[str, int]] = (), zeroed: Sequence[dict[str, Any]] = (),
                zeroed_total: int = 0, base: str | None = None, zone: str | None = None) -> str:
    """The run report's HTML from the rows `render_report` reads (pure: the unit tests call it).
    `movement`, `buckets`, `changes` and `outcomes` are what the run applied (its audit) or, for a
    run that did not apply, what its plan would have done; `zeroed` the SKUs the plan takes to 0."""
    from include.stocksync.runs import runview
    from include.stocksync.ui import charts

    base = runview.airflow_base() if base is None else base
    applied = run.get("status") in ("applied", "duplicate")
    moved = runview.Movement.of(movement, planned=not applied)
    story = runview.story(run, movement=moved, checks=checks, base=base)
    failed, passed = _checks(checks, dry_run=runview.is_dry_run(run))
    dag_id = str(run.get("dag_id") or "")
    facts_run = {**run, "duration": _duration(run), "checkout": runview.checkout_phrase(run),
                 "options": runview.options_set(run) or "none (the DAG's defaults)"}
    if runview.is_dry_run(run):  # the configured mode did not apply: a dry run freezes nothing
        facts_run["freeze_mode"] = f"not used: a dry run freezes nothing (configured: {run.get('freeze_mode')})"
    movers = charts.movers(list(changes))
    losses = charts.losses(list(zeroed))
    return render(
        "report.html", zone=zone, run_id=run_id, run=run, story=story, movement=moved, applied=applied,
        dag_label=runview.dag_label(dag_id), facts=[(label, facts_run.get(key), how) for label, key, how in FACTS],
        duration=_duration(run), checkout=runview.checkout_phrase(run, short=True),
        verdict=runview.checks_verdict({**run, "recorded": True}),
        failed_checks=failed, passed_checks=passed, blocking=len(runview.blocking_checks(checks)),
        quarantined=[{**q, "raw": json.dumps(q.get("raw"), ensure_ascii=False)} for q in quarantined],
        histogram=charts.histogram(list(buckets)), movers=movers, changes=list(changes)[:50],
        losses=losses, zeroed=list(zeroed), zeroed_total=zeroed_total,
        movers_repeat_losses=bool(losses and story.tripped and all(c.get("new_qty") == 0 for c in changes[:15])),
        outcomes=[(o, n, (APPLIED_OUTCOME_LABELS if applied else OUTCOME_LABELS).get(o, o)) for o, n in outcomes],
        stages=charts.stages(ordered_stages(run.get("stage_seconds")), runview.STAGE_LABELS),
        stage_rows=ordered_stages(run.get("stage_seconds")), stage_labels=runview.STAGE_LABELS,
        warnings=[_warning(w) for w in run.get("warnings") or []],
        attempts=[{**a, "at": _timestamp(a.get("at"))} for a in run.get("attempts") or [] if isinstance(a, dict)],
        alerts=list(alerts), has_plan=has_plan,
        reached_checks=bool(checks) or run.get("dq_success") is not None,
        links={"airflow_run": runview.run_href(dag_id, run_id, base),
               "task_log": runview.task_href(dag_id, run_id, story.task_id, base) if story.task_id else None,
               "plan": runview.plan_href(dag_id, run_id, base) if has_plan_table or has_plan else None,
               "zeroed": runview.plan_href(dag_id, run_id, base, zeroed=1),
               "page": runview.page_href(dag_id, run_id, base),
               "compare": f"{runview.page_href(dag_id, run_id, base)}/compare"})


def _timestamp(value: Any) -> Any:
    """A time stored in a jsonb list (attempts, warnings) back as a datetime, for `when`."""
    if isinstance(value, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


def _warning(warning: Any) -> dict[str, Any]:
    """A warning on the run record as a kind, a sentence and its time."""
    if not isinstance(warning, dict):
        return {"kind": "warning", "text": str(warning), "at": None}
    kind = str(warning.get("kind") or "warning")
    text = warning.get("note") or warning.get("error") or warning.get("text") or \
        ", ".join(f"{k}: {v}" for k, v in warning.items() if k not in ("kind", "at"))
    at = _timestamp(warning.get("at"))
    labels = {"orphaned_freeze": "orphaned freeze released", "report_failed": "report not written",
              "run_abandoned": "run abandoned", "freeze_overdue": "freeze overdue",
              "checkout_held": "checkout still closed by another run", "task_lost": "try lost with its worker"}
    return {"kind": labels.get(kind, kind.replace("_", " ")), "text": str(text), "at": at,
            "path": warning.get("path")}


def _plan_exists(cur: psycopg.Cursor, run_id: str) -> str | None:
    from include.stocksync.store.db import STAGING_SCHEMA
    from include.stocksync.sync.merge import plan_table

    table = plan_table(run_id)
    row = cur.execute(query("stocksync/select_table_exists"), {"name": f"{STAGING_SCHEMA}.{table}"}).fetchone()
    return table if row and row["present"] else None


def plan_figures(cur: psycopg.Cursor, plan: str, limit: int = BIGGEST_CHANGES) -> dict[str, Any]:
    """What a plan would do: movement, SKUs per outcome, the change buckets, the biggest changes and
    the SKUs it takes to 0 (dict-row cursor)."""
    movement = cur.execute(query("stocksync/select_plan_movement", plan=plan)).fetchone()
    outcomes = [(r["outcome"], int(r["skus"])) for r in cur.execute(query("stocksync/select_plan_outcomes",
                                                                            plan=plan)).fetchall()]
    buckets = [(int(r["bucket"]), int(r["skus"])) for r in cur.execute(query("stocksync/select_plan_histogram",
                                                                             plan=plan)).fetchall()]
    changes = cur.execute(query("stocksync/select_plan_biggest", plan=plan), {"limit": limit}).fetchall()
    zeroed = cur.execute(query("stocksync/select_plan_zeroed", plan=plan), {"limit": limit}).fetchall()
    return {"movement": movement, "outcomes": outcomes, "buckets": buckets, "changes": changes, "zeroed": zeroed,
            "zeroed_total": int(zeroed[0]["total"]) if zeroed else 0}


def render_report(conn: psycopg.Connection, run_id: str, directory: Path | None = None) -> str:
    with conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
        if run is None:
            raise ValueError(f"no run record for {run_id}")
        checks = with_sku_examples(cur, run, cur.execute(query("stocksync/select_dq_results"),
                                                          {"run_id": run_id}).fetchall())
        quarantined = cur.execute(query("stocksync/select_quarantine"), {"run_id": run_id, "limit": 500}).fetchall()
        alerts = cur.execute(query("stocksync/select_alerts"), {"run_id": run_id, "dag_id": run["dag_id"]}).fetchall()
        figures: dict[str, Any] = {"outcomes": [], "zeroed": [], "zeroed_total": 0}
        if run["status"] in ("applied", "duplicate"):
            figures["movement"] = cur.execute(query("stocksync/select_audit_movement"), {"run_id": run_id}).fetchone()
            figures["changes"] = cur.execute(query("stocksync/select_biggest_changes"),
                                             {"run_id": run_id, "limit": BIGGEST_CHANGES}).fetchall()
            figures["buckets"] = [(int(r["bucket"]), int(r["skus"])) for r in cur.execute(
                query("stocksync/select_change_histogram"), {"run_id": run_id}).fetchall()]
            figures["outcomes"] = [(o, int(run[o])) for o in ("changed", "clamped", "unchanged", "stale", "duplicate",
                                                               "unknown") if run.get(o)]
        else:  # a dry run, or a run stopped before its apply: what its plan would have done
            plan = _plan_exists(cur, run_id)
            if plan is not None:
                figures = {**plan_figures(cur, plan), "plan_table": True}
    has_plan = directory is not None and (directory / "plan.html").exists()
    return report_page(run_id, run, checks=checks, changes=figures.get("changes", ()), quarantined=quarantined,
                       alerts=alerts, buckets=figures.get("buckets", ()), has_plan=has_plan,
                       movement=figures.get("movement"), outcomes=figures["outcomes"], zeroed=figures["zeroed"],
                       zeroed_total=figures["zeroed_total"], has_plan_table=bool(figures.get("plan_table")))


def plan_page(run_id: str, rows: Sequence[Sequence[Any]], total: int, stopping: Sequence[Guardrail] = (), *,
              dag_id: str = "", movement: dict[str, Any] | None = None, outcomes: Sequence[tuple[str, int]] = (),
              buckets: Sequence[tuple[int, int]] = (), base: str | None = None, zone: str | None = None) -> str:
    """The dry-run plan's HTML: outcome counts, units that would move, the distribution, `rows`
    (the biggest changes first) of `total` planned SKUs, and the guardrails that would stop a real
    run (pure: the unit tests call it). The plugin's plan browser pages and filters the whole plan."""
    from include.stocksync.runs import runview
    from include.stocksync.ui import charts

    base = runview.airflow_base() if base is None else base
    return render("plan.html", zone=zone, run_id=run_id, headers=PLAN_LABELS, rows=list(rows), total=total,
                  stopping=list(stopping), movement=runview.Movement.of(movement, planned=True),
                  outcomes=[(o, n, OUTCOME_LABELS.get(o, o)) for o, n in outcomes],
                  histogram=charts.histogram(list(buckets)),
                  browse=runview.plan_href(dag_id, run_id, base) if dag_id else None,
                  push_dag=runview.PUSH_DAG, push_href=runview.dag_href(runview.PUSH_DAG, base))


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
    # the commit releases the lock; on an error the caller's rollback (or closing) releases it
    with committed(conn):
        conn.execute(query("stocksync/lock_run_report"), {"run_id": run_id})
        page = render_report(conn, run_id, path.parent)
        with private_file(path) as fh:
            fh.write(page)
    return path


def record_planned(cur: psycopg.Cursor[Any], run_id: str, movement: dict[str, Any] | None) -> None:
    """A dry run's plan figures on its record (the runs page reads them there, plan table or not)."""
    planned = {k: int((movement or {}).get(k) or 0) for k in ("skus_changed", "units_up", "units_down", "zeroed")}
    cur.execute(query("stocksync/update_sync_run_planned"), {"run_id": run_id, "planned": json.dumps(planned)})


def write_plan_report(conn: psycopg.Connection, settings: Settings, run_id: str, plan_table: str,
                      stopping: Sequence[Guardrail] = ()) -> Path:
    """`plan.csv` (every SKU) and `plan.html` (the plan's figures and its biggest changes) for a
    dry run; `stopping` are the guardrails that would stop a real run with the same parameters."""
    directory = private_folder(report_path(settings, run_id).parent)
    html_rows: list[list[Any]] = []
    total = 0
    with conn.cursor() as cur, private_file(directory / "plan.csv", newline="") as fh:
        writer = csv_writer(fh)  # formula-looking SKUs written as text
        writer.writerow(PLAN_HEADERS)
        cur.execute(query("stocksync/select_plan_rows", plan=plan_table))
        for row in cur:
            writer.writerow(row)
            if len(html_rows) < PLAN_HTML_ROWS and row[5]:  # the changes (biggest first); plan.csv has all
                html_rows.append(list(row))
            total += 1
    with committed(conn), conn.cursor(row_factory=dict_row) as cur:
        run = cur.execute(query("stocksync/select_sync_run"), {"run_id": run_id}).fetchone()
        figures = plan_figures(cur, plan_table, limit=1)
        record_planned(cur, run_id, figures["movement"])
    with private_file(directory / "plan.html") as fh:
        fh.write(plan_page(run_id, html_rows, total, stopping, dag_id=run["dag_id"] if run else "",
                           movement=figures["movement"], outcomes=figures["outcomes"], buckets=figures["buckets"]))
    return directory / "plan.html"
