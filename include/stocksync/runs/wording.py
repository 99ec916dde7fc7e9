"""The words and figures a run is told in, shared by the pages (ui/) and the alerts (ops/): what a
run status is called, numbers with a real minus sign and thousands separators, durations, text
shortened to fit, and times in the display zone (config/display.py). Pure functions: no database,
no markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from include.stocksync.config.display import current_zone

MINUS = "\u2212"


@dataclass(frozen=True)
class Label:
    """How a status shows: its text, its CSS class (ok, bad, warn, run, plan, none) and what it means."""

    text: str
    kind: str
    meaning: str


RUN_STATUSES: dict[str, Label] = {
    "running": Label("running", "run", "the run is going (or stopped without closing its record)"),
    "applied": Label("applied", "ok", "the WMS snapshot was written to the shop"),
    "duplicate": Label("duplicate", "ok", "this WMS snapshot had already been applied: nothing written"),
    "dry_run": Label("dry run", "plan", "a dry run: the plan was written, the shop was not"),
    "failed": Label("failed", "bad", "the run stopped at an error; see the error and the alerts"),
    "refused": Label("refused", "bad", "refused at its first task: no run record and no report"),
    "abandoned": Label("abandoned", "bad", "the run died without its teardown; a later run released its "
                                           "freeze and closed its record"),
    # the intraday sync's runs that end on purpose without writing
    "skipped": Label("skipped", "none", "nothing read or written: a full sync was running, or there was "
                                        "no position to continue from (see the reason)"),
    "gap": Label("gap", "warn", "the WMS change feed could not continue from our last sequence: nothing "
                                "written, the next full sync repairs it (see the reason)"),
    "stalled": Label("stalled", "warn", "the WMS change feed gave nothing new though the WMS's newest sequence "
                                        "is further on: nothing written, one alert per stall (see the reason)"),
}


def run_status(status: str | None) -> Label:
    """The label of a run status; an unknown one shows as itself, marked bad."""
    if status is None:
        return Label("unknown", "none", "no status recorded")
    return RUN_STATUSES.get(status) or Label(status, "bad", "unknown status")


def duration(seconds: float | None) -> str:
    """0.42 s, 12.3 s, 4 min 05 s, 2 h 07 min."""
    if seconds is None:
        return "–"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def fmt_int(value: float | int | None) -> str:
    """1234567 -> '1,234,567'; negative numbers get a real minus sign; None -> '–'."""
    if value is None:
        return "–"
    number = int(round(value))
    return f"{MINUS if number < 0 else ''}{abs(number):,}"


def fmt_signed(value: float | int | None) -> str:
    """+1,234 / −567 / 0."""
    if value is None:
        return "–"
    number = int(round(value))
    return f"+{number:,}" if number > 0 else fmt_int(number)


def shorten(text: str, length: int) -> str:
    """`text` cut to `length` characters with an ellipsis (the caller keeps the whole for a title)."""
    return text if len(text) <= length else text[: length - 1] + "…"


def local_time(value: datetime, *, seconds: bool = False, zone: bool = False) -> str:
    """`value` as text in the display zone: `2026-11-23 03:30` (+`:05`, + ` CET`)."""
    tz, _ = current_zone()
    local = value.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {local.tzname() or ''}".rstrip() if zone else text
