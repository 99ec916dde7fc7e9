"""The "Stock sync" page's content from the rows the plugin reads: one row per run
(refused and failed-early runs included) with what happened in words, the trends of the last
nights with the nights that stand out, and the availability service's last 24 hours.

Pure functions of rows (the plugin does the reading; the unit tests call these directly).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from include.stocksync.runs import runview
from include.stocksync.ui import charts
from include.stocksync.ui.pages import RUN_STATUSES, duration, run_status

TREND_NIGHTS = 30
RUNS_PER_PAGE = 50
FAILED = ("failed", "abandoned")


@dataclass(frozen=True)
class Filters:
    """The runs page's filters (query parameters), checked."""

    dag_id: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None
    page: int = 1
    problems: tuple[str, ...] = ()

    @classmethod
    def parse(cls, params: Mapping[str, str], dag_ids: Sequence[str]) -> Filters:
        problems = []

        def day(name: str) -> date | None:
            raw = (params.get(name) or "").strip()
            if not raw:
                return None
            try:
                found = date.fromisoformat(raw)
            except ValueError:
                problems.append(f"{name} must be a date like 2026-11-23")
                return None
            if not date(2000, 1, 1) <= found <= date(2999, 12, 31):  # the page adds a day to `until`
                problems.append(f"{name} must be a date from 2000 to 2999")
                return None
            return found

        dag_id = (params.get("dag") or "").strip() or None
        if dag_id is not None and (len(dag_id) > 250 or not dag_id.isprintable()):
            problems.append("dag is not a DAG id")
            dag_id = None
        status = (params.get("status") or "").strip() or None
        if status is not None and status not in RUN_STATUSES:
            problems.append(f"status must be one of {', '.join(RUN_STATUSES)}")
            status = None
        try:
            page = max(1, min(int(params.get("page") or 1), 10_000))
        except ValueError:
            page = 1
        return cls(dag_id, status, day("since"), day("until"), page, tuple(problems))

    def bounds(self, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
        """[since, until] as instants: whole days in the display zone, `until` included."""
        since = datetime.combine(self.since, time(), zone) if self.since else None
        until = datetime.combine(self.until + timedelta(days=1), time(), zone) if self.until else None
        return since, until

    def query(self, **changes: Any) -> str:
        from urllib.parse import urlencode

        values = {"dag": self.dag_id, "status": self.status, "since": self.since, "until": self.until,
                  "page": self.page if self.page > 1 else None, **changes}
        return urlencode({k: str(v) for k, v in values.items() if v not in (None, "")})

    @property
    def active(self) -> bool:
        return any((self.dag_id, self.status, self.since, self.until))


def _jsonish(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def run_row(run: Mapping[str, Any], *, report_href: str | None, base: str, in_airflow: bool = True) -> dict[str, Any]:
    """One row of the runs page: the record plus what happened, the checks' verdict and links;
    `in_airflow` false for a run Airflow has no record of (run outside it, e.g. by the demo's
    `dag.test()` on another metadata database): no link to a page that does not exist."""
    run = {**run, "guardrails": _jsonish(run.get("guardrails")), "options": _jsonish(run.get("options"))}
    recorded = run.get("recorded", True)
    dag_id, run_id = str(run["dag_id"]), str(run["run_id"])
    movement = None
    if run.get("status") in ("applied", "dry_run") and run.get("skus_moved") is not None:
        # its own figures: an applied run's audit rows, a dry run's plan (select_runs_page.sql)
        movement = runview.Movement(int(run["skus_moved"]), int(run.get("units_up") or 0),
                                    int(run.get("units_down") or 0), planned=run.get("status") == "dry_run")
    checks = _jsonish(run.get("failed_check_rows")) or []
    story = runview.story(run, movement=movement, checks=checks, base=base)
    started, ended = run.get("started_at"), run.get("closed_at") or run.get("finished_at")
    took = (ended - started).total_seconds() if started and ended and recorded else None
    task = story.task_id
    page_href = report_href or f"runs/{_q(dag_id)}/{_q(run_id)}"
    return {
        **run, "story": story, "status_label": run_status(run.get("status")),
        "verdict": runview.checks_verdict(run), "took": took, "dag_label": runview.dag_label(dag_id),
        "movement": movement, "checkout": runview.checkout_phrase(run, short=True) + _held_by_other(run),
        "report_href": page_href, "has_report": report_href is not None,
        "compare_href": f"runs/{_q(dag_id)}/{_q(run_id)}/compare" if recorded else None,
        "airflow_href": runview.run_href(dag_id, run_id, base) if in_airflow else None,
        "log_href": runview.task_href(dag_id, run_id, task, base) if task and in_airflow else None,
        "full_text": story.sentence + (f"\n\n{cause}" if (cause := run.get("first_error") or run.get("error")) else ""),
    }


def _held_by_other(run: Mapping[str, Any]) -> str:
    """When the run ended with another run's freeze still closing checkout (lifecycle.CHECKOUT_HELD)."""
    held = [w for w in _jsonish(run.get("warnings")) or [] if isinstance(w, dict) and w.get("kind") == "checkout_held"]
    return f"; still closed by run {held[0].get('run_id')}" if held else ""


def _q(text: str) -> str:
    return runview.q(text)


# ------------------------------------------------------------------------------------------- trends

TRENDS: tuple[tuple[str, str, str], ...] = (
    ("skus_changed", "SKUs changed", "count"),
    ("units_moved", "Units moved", "count"),
    ("freeze_seconds", "Checkout closed", "seconds"),
    ("duration_seconds", "Run duration", "seconds"),
    ("failed_checks", "Failed checks", "count"),
    ("skus_off", "Drift (SKUs off)", "count"),
)


def trends(runs: Sequence[Mapping[str, Any]], drift: Sequence[Mapping[str, Any]], *, today: date,
           nights: int = TREND_NIGHTS) -> list[dict[str, Any]]:
    """The small charts over the last `nights` nights: one per figure of `TRENDS`, each night what
    its runs applied, re-runs added and marked (`runs`: stocksync/select_run_trends.sql) or the drift history
    (`drift`: loop/select_drift_nights.sql, whose own alert flags a night too)."""
    first = today - timedelta(days=nights - 1)
    points = [{**r, "failed": bool(r.get("failed_runs")) or r.get("status") in FAILED,
               "units_moved": None if r.get("units_moved") is None else int(r["units_moved"]),
               "failed_checks": int(r.get("failed_checks") or 0),
               "skus_changed": None if r.get("status") in FAILED or r.get("skus_changed") is None
               else int(r["skus_changed"]),
               "applied_runs": int(r.get("applied_runs") or 0)}
              for r in runs if first <= r["night"] <= today]
    drift_points = [{"night": d["night"], "skus_off": int(d["skus_off"]), "alert": bool(d.get("alert")),
                     "reason": d.get("alert_reason")} for d in drift if first <= d["night"] <= today]
    charts_out = []
    for key, title, kind in TRENDS:
        source = drift_points if key == "skus_off" else points
        fmt = (lambda v: duration(v)) if kind == "seconds" else charts.fmt_int
        flag = None
        if key == "skus_off":
            by_night = {p["night"]: p for p in source}
            values = [by_night.get(first + timedelta(days=i), {}).get("skus_off") for i in range(nights)]
            stats = charts.outliers(values)
            flag = [stats[i] or bool(by_night.get(first + timedelta(days=i), {}).get("alert"))
                    for i in range(nights)]
        chart = charts.trend(source, key, first=first, last=today, fmt=fmt,
                             min_abs=1.0 if kind == "count" else 5.0, flag=flag)
        charts_out.append({"key": key, "title": title, "chart": chart})
    return charts_out


# ------------------------------------------------------------------------------------ availability

def availability(hours: Sequence[Mapping[str, Any]], *, now: datetime, span: int = 24) -> dict[str, Any] | None:
    """The availability service's last `span` hours (availability/select_recent_stats.sql rows,
    newest first) as a panel: requests, the worst hour's p95, unknown answers by cause, rejected
    requests, a line of requests per hour. None when the service recorded nothing."""
    if not hours:
        return None
    requests = sum(int(h.get("requests") or 0) for h in hours)
    unknown = sum(int(h.get("unknown") or 0) for h in hours)
    rejected = sum(int(h.get("rejected") or 0) for h in hours)
    causes: Counter[str] = Counter()
    for h in hours:
        for cause, n in (_jsonish(h.get("unknown_causes")) or {}).items():
            causes[str(cause)] += int(n)
    p95s = [h.get("latency_p95_le_ms") for h in hours]
    known = [float(v) for v in p95s if v is not None]
    above = any(v is None and int(h.get("requests") or 0) for v, h in zip(p95s, hours, strict=True))
    top_hour = now.astimezone(hours[0]["hour"].tzinfo).replace(minute=0, second=0, microsecond=0)
    by_hour = {h["hour"]: h for h in hours}
    slots = [top_hour - timedelta(hours=span - 1 - i) for i in range(span)]
    per_hour = [float(by_hour[s]["requests"]) if s in by_hour else None for s in slots]
    latest_p95 = next((h.get("latency_p95_le_ms") for h in hours if h.get("requests")), None)
    return {"requests": requests, "unknown": unknown, "rejected": rejected,
            "unknown_share": unknown / requests if requests else None,
            "causes": causes.most_common(), "p95_worst": max(known) if known else None, "p95_above": above,
            "p95_latest": latest_p95, "max_ms": max((float(h.get("latency_max_ms") or 0) for h in hours), default=0.0),
            "workers": max(int(h.get("workers") or 0) for h in hours),
            "spark": charts.sparkline(per_hour, width=240, height=36), "hours": len(hours)}


@dataclass(frozen=True)
class Schedule:
    """When the nightly runs: its cron in the shop's zone, and its next run in the shop's zone, in
    the zone the page shows (when that differs) and in UTC."""

    cron: str
    shop_zone: str
    next_shop: str            # 2026-12-06 02:30 CET
    next_display: str | None  # the same instant in the page's zone, None when it is the shop's zone
    next_utc: str             # 2026-12-06 01:30 UTC


def schedule(cron: str, shop_zone: str, display: tuple[tzinfo, str], run: datetime | None) -> Schedule | None:
    """The nightly's schedule line for its next run `run`, as the DAG's timetable reads the
    expression (`task_support.next_run_after`, in the Airflow layer). None without a next run
    (Airflow cannot read the expression)."""
    from zoneinfo import ZoneInfo

    if run is None:
        return None

    def at(zone: tzinfo) -> str:
        local = run.astimezone(zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    shop = ZoneInfo(shop_zone)
    tz, name = display
    same = getattr(tz, "key", name) == shop_zone or name == shop_zone.upper() == "UTC"
    return Schedule(cron, shop_zone, at(shop), None if same else at(tz), at(timezone.utc))


def status_options() -> list[tuple[str, str]]:
    return [(name, label.text) for name, label in RUN_STATUSES.items()]
