"""A run's figures beside the last applied run of the same DAG before it (the compare view).

The rows are the run records' own figures (`stocksync/select_run_figures.sql`): what each run
applied (from its audit rows), what it counted, its guardrail figures, its freeze window and its
duration, with the difference "this run − the last applied one" where both are numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (record column, label) in the order the view shows them
FIGURES: tuple[tuple[str, str], ...] = (
    ("skus_changed", "SKUs changed"),
    ("units_up", "Units up"),
    ("units_down", "Units down"),
    ("zeroed", "SKUs taken to 0"),
    ("quarantined", "Rows quarantined"),
    ("extracted", "Rows extracted"),
    ("valid", "Rows valid"),
    ("unchanged", "SKUs unchanged"),
    ("stale", "SKUs stale"),
    ("clamped", "SKUs clamped"),
    ("unknown", "Unknown SKUs"),
    ("freeze_seconds", "Checkout closed (s)"),
    ("duration_seconds", "Duration (s)"),
)


@dataclass(frozen=True)
class Row:
    label: str
    this: Any
    previous: Any
    difference: float | None


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _row(label: str, this: Any, previous: Any) -> Row:
    a, b = _number(this), _number(previous)
    difference = None if a is None or b is None else round(a - b, 3) if isinstance(a - b, float) else a - b
    return Row(label, a if a is not None else this, b if b is not None else previous, difference)


def _guardrails(record: dict[str, Any] | None) -> dict[str, Any]:
    """A run's guardrail figures by name (the value each observed)."""
    found: dict[str, Any] = {}
    for entry in (record or {}).get("guardrails") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            found[entry["name"]] = entry.get("value")
    return found


def rows(this: dict[str, Any], previous: dict[str, Any] | None) -> list[Row]:
    """The compare view's rows: each figure of `this` beside `previous` (None: no applied run before)."""
    before = previous or {}
    shown = [_row(label, this.get(column), before.get(column)) for column, label in FIGURES]
    mine, theirs = _guardrails(this), _guardrails(previous)
    for name in sorted({*mine, *theirs}):
        shown.append(_row(f"Guardrail {name}", mine.get(name), theirs.get(name)))
    return shown
