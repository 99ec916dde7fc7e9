"""Failures as incidents: the recorded alerts (`stocksync.alerts`) grouped by their cause.

A cause is a fingerprint of the alert's kind, DAG, task and its error *normalised*, so the same
failure on another night, for another run or another SKU is the same incident (docs/operations.md
"Incidents"). An incident has a count of occurrences, its first and last time seen, its runs, and a
state: open, or acknowledged by a person with a note. An acknowledgement covers the occurrences up
to the last one the person was shown; a later occurrence reopens the incident.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NOTE_MAX = 1000          # characters of an acknowledgement's note (the table checks it too)
CAUSE_MAX = 500          # characters of the normalised error kept in the fingerprint and shown
RUNS_SHOWN = 10          # an incident's most recent runs listed on the page
FINGERPRINT = re.compile(r"[0-9a-f]{16}")

# What varies between occurrences of one cause, replaced in this order (the first patterns take
# what the later, broader ones would cut into pieces):
_VARIABLE_PARTS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Airflow run ids: manual__2026-12-05T02:30:00+00:00, scheduled__..., asset_triggered__..., or any word__word
    (re.compile(r"\b[A-Za-z_]+__[^\s,;'\"]*[^\s,;:'\".)]"), "<run>"),
    # ISO 8601 timestamps and dates
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"), "<time>"),
    # UUIDs and long hex strings (run keys, snapshot ids, freeze ids)
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<id>"),
    # quoted values: SKUs, file names, raw cells the WMS sent
    (re.compile(r"'[^'\n]{0,200}'|\"[^\"\n]{0,200}\""), "<value>"),
    # SKU-like tokens: letters and digits joined by - or _ with at least one digit (SKU-0000042, AB_12)
    # (the lookaheads look at most 64 characters ahead, a SKU's length: unbounded, they re-read a long
    # run of letters and hyphens from every word start in it, and a 4,000-character error took seconds)
    (re.compile(r"\b(?=[A-Za-z0-9]{0,64}[A-Za-z])(?=[A-Za-z0-9_-]{0,64}\d)[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)+\b"),
     "<sku>"),
    # numbers: counts, shares, seconds, ports
    (re.compile(r"[-+]?\d+(?:[.,]\d+)?%?"), "<n>"),
)
_SPACE = re.compile(r"\s+")


def normalise(error: str | None, run_id: str | None = None) -> str:
    """The error with what differs between occurrences of one cause replaced by placeholders:
    the alert's own run id, run ids, timestamps, ids, quoted values, SKUs and numbers."""
    text = (error or "")[:20_000]
    if run_id:  # the alert's own run id, where it stands as a whole word
        text = re.sub(rf"(?<![\w-]){re.escape(run_id)}(?![\w-])", "<run>", text)
    for pattern, placeholder in _VARIABLE_PARTS:
        text = pattern.sub(placeholder, text)
    return _SPACE.sub(" ", text).strip()[:CAUSE_MAX]


def fingerprint(kind: str, dag_id: str, task_id: str | None, cause: str) -> str:
    """16 hex characters naming one cause: kind, DAG, task and the normalised error."""
    key = "\x1f".join((kind, dag_id, task_id or "", cause))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


@dataclass
class Incident:
    fingerprint: str
    kind: str
    dag_id: str
    task_id: str | None
    cause: str
    example: str              # the newest occurrence's error as recorded
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    runs: list[str] = field(default_factory=list)  # newest first, each once
    ack: dict[str, Any] | None = None               # the latest acknowledgement

    @property
    def acknowledged(self) -> bool:
        """Acknowledged, and nothing happened since the last occurrence the person saw."""
        return self.ack is not None and self.ack["seen_until"] >= self.last_seen

    @property
    def state(self) -> str:
        return "acknowledged" if self.acknowledged else "open"


def group(occurrences: list[dict[str, Any]]) -> list[Incident]:
    """Occurrences (newest first: run_id, dag_id, task_id, kind, error, sent_at) grouped by cause,
    the most recently seen incident first."""
    found: dict[str, Incident] = {}
    for row in occurrences:
        cause = normalise(row["error"], row["run_id"])
        key = fingerprint(row["kind"], row["dag_id"], row["task_id"], cause)
        incident = found.get(key)
        if incident is None:
            incident = found[key] = Incident(key, row["kind"], row["dag_id"], row["task_id"], cause,
                                             example=row["error"] or "", first_seen=row["sent_at"],
                                             last_seen=row["sent_at"])
        incident.count += 1
        incident.first_seen = min(incident.first_seen, row["sent_at"])
        incident.last_seen = max(incident.last_seen, row["sent_at"])
        if row["run_id"] not in incident.runs:
            incident.runs.append(row["run_id"])
    return sorted(found.values(), key=lambda i: i.last_seen, reverse=True)


def with_acks(incidents: list[Incident], acks: list[dict[str, Any]]) -> list[Incident]:
    """The incidents with their latest acknowledgement, open ones first (each part by last seen)."""
    latest = {a["fingerprint"]: a for a in acks}
    for incident in incidents:
        incident.ack = latest.get(incident.fingerprint)
    return sorted(incidents, key=lambda i: i.acknowledged)


def check_note(note: str | None) -> str:
    """The note of an acknowledgement, stripped; ValueError saying what is wrong otherwise."""
    text = (note or "").strip()
    if not text:
        raise ValueError("An acknowledgement needs a note: what you found or did about this incident")
    if len(text) > NOTE_MAX:
        raise ValueError(f"The note is {len(text)} characters long; at most {NOTE_MAX} are kept")
    if "\x00" in text:
        raise ValueError("The note holds a NUL character")
    return text
