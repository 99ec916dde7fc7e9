"""Counters of the availability service: answers by result and cause, latency, live mode outcomes.

Two views of the same counts: running totals since the worker started, served as Prometheus text
on `GET /metrics` (per worker process: uvicorn workers share nothing, so each answers for itself
and says which one it is), and per-period deltas that each worker writes to
`stocksync.availability_stats` every `stats_flush_seconds` (and at shutdown), which
`availability/select_recent_stats.sql` sums over workers for the Airflow "Stock sync" page.
Deltas rather than totals, so rows of workers that restarted simply add up. A failed write keeps
the period's counts for the next attempt (a database outage delays the figures, it does not lose
them).
"""

from __future__ import annotations

import bisect
import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

# Upper bounds of the latency histogram buckets, in milliseconds (one more bucket holds the rest).
LATENCY_BOUNDS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
ANSWER_KINDS = ("available", "unavailable", "unknown", "probe")
SHED_CAUSE = "overloaded"  # the cause of an unknown answer given at once by an overloaded worker


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Period:
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    requests: int = 0
    by_result: Counter[tuple[str, str]] = field(default_factory=Counter)  # (result, cause) -> n
    live: Counter[str] = field(default_factory=Counter)  # written | current | fallback
    fallback_causes: Counter[str] = field(default_factory=Counter)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def add(self, result: str, cause: str, latency_ms: float, live: str | None, live_cause: str | None) -> None:
        self.requests += 1
        self.by_result[(result, cause)] += 1
        if live:
            self.live[live] += 1
            if live_cause:
                self.fallback_causes[live_cause] += 1
        self.buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
        self.latency_sum_ms += latency_ms
        self.latency_max_ms = max(self.latency_max_ms, latency_ms)

    def merge(self, other: Period) -> None:
        """Fold an earlier period (whose write failed) into this one."""
        self.started = min(self.started, other.started)
        self.requests += other.requests
        self.by_result.update(other.by_result)
        self.live.update(other.live)
        self.fallback_causes.update(other.fallback_causes)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_max_ms = max(self.latency_max_ms, other.latency_max_ms)

    def counts(self, result: str) -> dict[str, int]:
        """Counts of one result by cause."""
        out: Counter[str] = Counter()
        for (res, cause), n in self.by_result.items():
            if res == result:
                out[cause] += n
        return dict(sorted(out.items()))

    def row(self, instance: str, ended: datetime) -> dict[str, Any]:
        """Parameters of availability/insert_stats.sql."""
        answers = {kind: sum(self.counts(kind).values()) for kind in ANSWER_KINDS}
        live = {"written": self.live["written"], "current": self.live["current"],
                "fallback": self.live["fallback"], "fallback_causes": dict(sorted(self.fallback_causes.items()))}
        return {
            "instance": instance, "period_start": self.started, "period_end": ended, "requests": self.requests,
            "answers": Jsonb(answers), "unknown_causes": Jsonb(self.counts("unknown")),
            "rejected": Jsonb(self.counts("rejected")), "live": Jsonb(live),
            "latency_bounds_ms": [float(b) for b in LATENCY_BOUNDS_MS], "latency_buckets": self.buckets,
            "latency_sum_ms": self.latency_sum_ms, "latency_max_ms": self.latency_max_ms,
        }


class Metrics:
    def __init__(self, instance: str | None = None) -> None:
        self.instance = instance or instance_name()
        self.total = Period()
        self.pending = Period()
        self.flushes = 0
        self.flush_failures = 0

    def observe(self, result: str, cause: str, latency_ms: float, *, live: str | None = None,
                live_cause: str | None = None) -> None:
        self.total.add(result, cause, latency_ms, live, live_cause)
        self.pending.add(result, cause, latency_ms, live, live_cause)

    def take_pending(self) -> Period:
        period, self.pending = self.pending, Period()
        return period

    def put_back(self, period: Period) -> None:
        period.merge(self.pending)
        self.pending = period

    def prometheus(self, *, live_mode: bool, db_down: bool, in_flight: int = 0, max_in_flight: int = 0) -> str:
        t = self.total
        inst = _label(self.instance)
        lines = [
            "# HELP stocksync_availability_info The worker answering (uvicorn workers count separately).",
            "# TYPE stocksync_availability_info gauge",
            f'stocksync_availability_info{{instance="{inst}",live_mode="{str(live_mode).lower()}"}} 1',
            "# HELP stocksync_availability_requests_total Requests by result "
            "(available, unavailable, unknown, probe, rejected) and cause.",
            "# TYPE stocksync_availability_requests_total counter",
        ]
        for (result, cause), n in sorted(t.by_result.items()):
            labels = f'result="{_label(result)}",cause="{_label(cause)}"'
            lines.append(f"stocksync_availability_requests_total{{{labels}}} {n}")
        lines += [
            "# HELP stocksync_availability_live_total Live mode: written back, shop already current, fallback.",
            "# TYPE stocksync_availability_live_total counter",
        ]
        for outcome in ("written", "current", "fallback"):
            lines.append(f'stocksync_availability_live_total{{outcome="{outcome}"}} {t.live[outcome]}')
        lines += ["# HELP stocksync_availability_live_fallback_total Live answers from the shop's number, by cause.",
                  "# TYPE stocksync_availability_live_fallback_total counter"]
        for cause, n in sorted(t.fallback_causes.items()):
            lines.append(f'stocksync_availability_live_fallback_total{{cause="{_label(cause)}"}} {n}')
        lines += ["# HELP stocksync_availability_latency_seconds Time from request to answer.",
                  "# TYPE stocksync_availability_latency_seconds histogram"]
        cumulative = 0
        for bound, n in zip(LATENCY_BOUNDS_MS, t.buckets, strict=False):
            cumulative += n
            lines.append(f'stocksync_availability_latency_seconds_bucket{{le="{bound / 1000:g}"}} {cumulative}')
        lines += [f'stocksync_availability_latency_seconds_bucket{{le="+Inf"}} {t.requests}',
                  f"stocksync_availability_latency_seconds_sum {t.latency_sum_ms / 1000:.6f}",
                  f"stocksync_availability_latency_seconds_count {t.requests}",
                  "# HELP stocksync_availability_db_down 1 while the database is marked down (answers unknown).",
                  "# TYPE stocksync_availability_db_down gauge",
                  f"stocksync_availability_db_down {int(db_down)}",
                  "# HELP stocksync_availability_shed_total Requests answered unknown at once because "
                  "MAX_IN_FLIGHT requests were in flight (also in requests_total, cause overloaded).",
                  "# TYPE stocksync_availability_shed_total counter",
                  f"stocksync_availability_shed_total {t.by_result[('unknown', SHED_CAUSE)]}",
                  "# HELP stocksync_availability_in_flight Script requests being answered now, and the bound.",
                  "# TYPE stocksync_availability_in_flight gauge",
                  f"stocksync_availability_in_flight {in_flight}",
                  f"stocksync_availability_in_flight_limit {max_in_flight}",
                  "# HELP stocksync_availability_stats_flushes_total Writes of the counters to the database.",
                  "# TYPE stocksync_availability_stats_flushes_total counter",
                  f'stocksync_availability_stats_flushes_total{{ok="true"}} {self.flushes}',
                  f'stocksync_availability_stats_flushes_total{{ok="false"}} {self.flush_failures}']
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
