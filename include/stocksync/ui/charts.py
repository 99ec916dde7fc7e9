"""The geometry of the charts on stocksync's pages, computed server-side (pages.py renders them as
inline SVG through `templates/charts.html`).

The pages run no script (their CSP forbids it), so a chart is an SVG drawn here: every number a
template puts into an SVG attribute comes from these functions, which take plain numbers and
return plain numbers. Text that came from outside (SKUs, run ids) is passed through as data and
the templates print it escaped; inside an SVG they print it with `visible_text`, never `visible`
(an HTML `<span>` inside `<svg>` would end the SVG element).

Every chart has a `viewBox` and scales down with the page (no chart makes a page scroll sideways),
axis ticks at round numbers, and a `<title>` per mark with the exact figure for a hover.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from include.stocksync.runs.wording import MINUS, fmt_int, fmt_signed, shorten

UP, DOWN, NEUTRAL, BAD, MUTED = "#3c5b89", "#c2410c", "#94a3b8", "#dc2626", "#cbd5e1"


def fmt_compact(value: float | None) -> str:
    """A short figure for a tick or a small chart: 950, 1.2k, 35k, 1.2M."""
    if value is None:
        return "–"
    size = abs(value)
    sign = MINUS if value < 0 else ""
    if size >= 1e6:
        return f"{sign}{size / 1e6:.1f}M".replace(".0M", "M")
    if size >= 1e4:
        return f"{sign}{size / 1e3:.0f}k"
    if size >= 1e3:
        return f"{sign}{size / 1e3:.1f}k".replace(".0k", "k")
    if size != int(size):
        return f"{sign}{size:.1f}"
    return f"{sign}{int(size)}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top` (about `count` steps of 1, 2 or 5 x 10^n)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def bucket_label(bucket: int) -> str:
    """A signed power-of-ten bucket (stocksync/select_change_histogram.sql) as a range of units."""
    if bucket == 0:
        return "0"
    low, high = 10 ** (abs(bucket) - 1), 10 ** abs(bucket) - 1
    if bucket > 0:
        return f"+{low:,}" if low == high else f"+{low:,}…+{high:,}"
    return f"{MINUS}{low:,}" if low == high else f"{MINUS}{high:,}…{MINUS}{low:,}"


def histogram(buckets: Sequence[tuple[int, int]]) -> dict[str, Any] | None:
    """Bar chart of SKUs per change bucket, with a y axis of round ticks and a range under each bar."""
    if not buckets:
        return None
    width, height, left, right, top_pad, bottom = 600, 250, 52, 12, 18, 48
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    ticks = nice_ticks(max(n for _, n in buckets))
    scale = plot_h / ticks[-1]
    slot = plot_w / len(buckets)
    bar_w = min(slot * 0.8, 70)
    bars = []
    for i, (bucket, count) in enumerate(buckets):
        h = count * scale
        x = left + i * slot + (slot - bar_w) / 2
        bars.append({"x": x, "y": top_pad + plot_h - h, "width": bar_w, "height": h, "center": x + bar_w / 2,
                     "count": fmt_int(count), "label": bucket_label(int(bucket)),
                     "color": UP if bucket > 0 else DOWN if bucket < 0 else NEUTRAL})
    return {"width": width, "height": height, "left": left, "right": width - right, "top": top_pad,
            "axis_y": top_pad + plot_h, "label_size": 10 if len(buckets) <= 8 else 8,
            "ticks": [{"y": top_pad + plot_h - t * scale, "label": fmt_compact(t)} for t in ticks], "bars": bars}


def movers(rows: Sequence[dict[str, Any]], limit: int = 15) -> dict[str, Any] | None:
    """Diverging horizontal bars of the biggest changes: decreases to the left, increases to the
    right of a zero line, one row per SKU (the SKU label is cut to fit; its `<title>` has it whole)."""
    shown = [r for r in rows if r.get("delta")][:limit]
    if not shown:
        return None
    width, label_w, row_h, top_pad, right_pad = 600, 190, 20, 22, 56
    biggest = max(abs(int(r["delta"])) for r in shown)
    has_down = any(int(r["delta"]) < 0 for r in shown)
    has_up = any(int(r["delta"]) > 0 for r in shown)
    plot_left, plot_right = label_w + 44, width - right_pad
    if has_down and has_up:
        zero = (plot_left + plot_right) / 2
        half = (plot_right - plot_left) / 2
    elif has_down:
        zero, half = plot_right, plot_right - plot_left
    else:
        zero, half = plot_left, plot_right - plot_left
    bars = []
    for i, row in enumerate(shown):
        delta = int(row["delta"])
        length = max(abs(delta) / biggest * half, 1.5)
        y = top_pad + i * row_h
        x = zero if delta > 0 else zero - length
        bars.append({"sku": str(row["sku"]), "short": shorten(str(row["sku"]), 28), "x": x, "y": y + 3,
                     "width": length, "height": row_h - 6, "color": UP if delta > 0 else DOWN,
                     "value": fmt_signed(delta), "value_x": x + length + 4 if delta > 0 else x - 4,
                     "anchor": "start" if delta > 0 else "end", "text_y": y + row_h / 2 + 4,
                     "old": fmt_int(row.get("old_qty")), "new": fmt_int(row.get("new_qty"))})
    height = top_pad + len(shown) * row_h + 8
    return {"width": width, "height": height, "zero": zero, "top": top_pad - 6, "bottom": height - 4,
            "label_x": label_w, "bars": bars, "more": max(len([r for r in rows if r.get("delta")]) - limit, 0)}


def losses(rows: Sequence[dict[str, Any]], limit: int = 15) -> dict[str, Any] | None:
    """Horizontal bars of the stock each SKU would lose (SKUs dropping to 0), biggest first."""
    shown = [r for r in rows if r.get("old_qty")][:limit]
    if not shown:
        return None
    return movers([{**r, "delta": -int(r["old_qty"])} for r in shown], limit)


def stages(ordered: Sequence[tuple[str, float]], labels: dict[str, str]) -> dict[str, Any] | None:
    """One stacked horizontal bar: where a run's time went, stage by stage, in pipeline order."""
    total = sum(max(s, 0.0) for _, s in ordered)
    if total <= 0:
        return None
    palette = ("#3c5b89", "#5b7aa8", "#0e7490", "#7c3aed", "#b45309", "#15803d", "#64748b")
    width, left, right = 600, 2, 2
    plot_w = width - left - right
    x = float(left)
    segments = []
    for i, (name, seconds) in enumerate(ordered):
        w = max(seconds, 0.0) / total * plot_w
        segments.append({"name": name, "label": labels.get(name, name), "x": x, "width": w,
                         "color": palette[i % len(palette)], "seconds": seconds, "share": seconds / total,
                         "inside": w >= 70})
        x += w
    return {"width": width, "height": 30, "segments": segments, "total": total}


# ------------------------------------------------------------------------------------------ trends

def outliers(values: Sequence[float | None], *, min_points: int = 5, threshold: float = 3.5,
             min_abs: float = 1.0) -> list[bool]:
    """Which values deviate strongly from the others: a robust z-score (distance from the median
    in units of 1.4826 x the median absolute deviation) of at least `threshold`, and at least
    `min_abs` from the median. With fewer than `min_points` values nothing is judged. When most
    values are equal (MAD 0) any value `min_abs` or more away from them is an outlier."""
    present = [float(v) for v in values if v is not None]
    if len(present) < min_points:
        return [False] * len(values)
    median = statistics.median(present)
    mad = statistics.median(abs(v - median) for v in present) * 1.4826
    flags = []
    for v in values:
        if v is None:
            flags.append(False)
            continue
        distance = abs(float(v) - median)
        if distance < min_abs:
            flags.append(False)
        elif mad == 0:
            flags.append(True)
        else:
            flags.append(distance / mad >= threshold)
    return flags


def trend(points: Sequence[dict[str, Any]], key: str, *, first: date, last: date, unit: str = "",
          fmt: Any = fmt_int, min_abs: float = 1.0, flag: Iterable[bool] | None = None) -> dict[str, Any]:
    """A small bar chart of one figure over the nights `first`..`last` (one slot per night; a night
    without a run is an empty slot). `points` have `night`, `key`, `failed` (a run stopped) and
    `applied_runs` (more than one: the night's re-runs, marked with a tick above the bar).
    Nights that deviate strongly from the others (`outliers`, or `flag` when given) are drawn red
    and listed in `outliers`; the dashed line is the median."""
    nights = (last - first).days + 1
    width, height, top_pad, bottom = 240, 74, 6, 16
    plot_h = height - top_pad - bottom
    by_night = {p["night"]: p for p in points}
    values = [by_night[first + timedelta(days=i)].get(key) if first + timedelta(days=i) in by_night else None
              for i in range(nights)]
    flags = list(flag) if flag is not None else outliers(values, min_abs=min_abs)
    present = [float(v) for v in values if v is not None]
    top = max(present, default=0.0) or 1.0
    slot = width / nights
    bar_w = max(slot - 2, 1.0)
    median = statistics.median(present) if present else None
    bars, marked = [], []
    for i, value in enumerate(values):
        night = first + timedelta(days=i)
        point = by_night.get(night)
        if point is None:
            continue
        failed = bool(point.get("failed"))
        applied_runs = int(point.get("applied_runs") or 0)  # more than one: re-runs applied that night too
        odd = bool(flags[i]) if i < len(flags) else False
        h = (float(value) / top * plot_h) if value else 0.0
        h = max(h, 1.5) if value else 0.0
        x = i * slot + (slot - bar_w) / 2
        label = f"{night.isoformat()}: {fmt(value)}{unit}" + (" (a run failed that night)" if failed else "") + \
            (f" ({applied_runs} runs applied that night, added up)" if applied_runs > 1 else "") + \
            (" — far from the trend" if odd else "")
        bars.append({"x": x, "y": top_pad + plot_h - h, "width": bar_w, "height": h,
                     "color": BAD if odd else (MUTED if failed else UP), "title": label, "failed": failed,
                     "odd": odd, "center": x + bar_w / 2, "reruns": applied_runs - 1 if applied_runs > 1 else 0})
        if odd:
            marked.append({"night": night, "value": fmt(value) + unit})
    latest = next((p for p in sorted(points, key=lambda p: p["night"], reverse=True) if p.get(key) is not None), None)
    return {"width": width, "height": height, "axis_y": top_pad + plot_h, "bars": bars,
            "median_y": None if median is None else top_pad + plot_h - (median / top * plot_h),
            "median": None if median is None else fmt(median) + unit,
            "latest": None if latest is None else fmt(latest.get(key)) + unit,
            "latest_night": None if latest is None else latest["night"],
            "first_label": first.strftime("%d %b"), "last_label": last.strftime("%d %b"),
            "outliers": marked, "empty": not present}


def sparkline(values: Sequence[float | None], *, width: int = 240, height: int = 40) -> dict[str, Any] | None:
    """A thin line over equally spaced values (None: a gap), for a panel's small figure."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    top = max(present) or 1.0
    step = width / max(len(values) - 1, 1)
    segments: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            segments.append([])
            continue
        segments[-1].append(f"{i * step:.1f},{height - 2 - (v / top) * (height - 6):.1f}")
    return {"width": width, "height": height, "lines": [" ".join(s) for s in segments if len(s) > 1],
            "dots": [s[0] for s in segments if len(s) == 1]}
