"""The cause fingerprint: occurrences that differ only in run id, time, count or SKU are one
incident; another task or another error is another (docs/operations.md "Incidents")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from include.stocksync.ops.incidents import group, with_acks

T0 = datetime(2026, 12, 1, 2, 30, tzinfo=timezone.utc)


def occurrence(run_id: str, error: str, *, task_id: str = "extract", days: int = 0) -> dict[str, object]:
    return {"run_id": run_id, "dag_id": "inventory_nightly_sync", "task_id": task_id, "kind": "task_failed",
            "error": error, "sent_at": T0 + timedelta(days=days)}


def test_same_cause_on_three_nights_is_one_incident_with_its_count_and_times() -> None:
    rows = [occurrence(f"scheduled__2026-12-0{d}T01:30:00+00:00",
                       f"extract of scheduled__2026-12-0{d}T01:30:00+00:00 failed: WMS answered 503 after {d + 2} "
                       f"tries at 2026-12-0{d}T01:3{d}:07Z reading 'SKU-00004{d}' (SKU-00004{d})", days=d)
            for d in (3, 2, 1)]
    rows.append(occurrence("manual__x", "extract failed: WMS answered 503 after 4 tries", task_id="validate"))
    rows.append(occurrence("manual__y", "extract failed: the feed's cursor went backwards"))
    found = group(rows)
    counts = sorted(i.count for i in found)
    assert counts == [1, 1, 3]
    three = next(i for i in found if i.count == 3)
    assert (three.first_seen, three.last_seen) == (T0 + timedelta(days=1), T0 + timedelta(days=3))
    assert len(three.runs) == 3


def test_an_occurrence_after_the_acknowledgement_reopens_the_incident() -> None:
    [incident] = group([occurrence("manual__a", "drift check failed: 12 SKUs differ", days=1)])
    ack = {"fingerprint": incident.fingerprint, "acknowledged_by": "alice", "note": "n",
           "acknowledged_at": T0 + timedelta(days=2), "seen_until": T0 + timedelta(days=1)}
    assert with_acks([incident], [ack])[0].state == "acknowledged"
    [again] = group([occurrence("manual__b", "drift check failed: 30 SKUs differ", days=4),
                     occurrence("manual__a", "drift check failed: 12 SKUs differ", days=1)])
    assert again.fingerprint == incident.fingerprint
    assert with_acks([again], [ack])[0].state == "open"


def test_skus_are_found_within_a_skus_length_and_a_long_run_of_words_is_left_alone() -> None:
    """SKU-like tokens become <sku> (SKU-0000042, AB_12); the patterns look at most a SKU's length
    (64 characters) ahead for the letter and the digit that make one, so a 4,000-character run of
    letters and hyphens (an alert's cap) is read once, not once from every word in it."""
    from include.stocksync.ops.incidents import normalise

    assert normalise("stock of SKU-0000042 and AB_12 is off") == "stock of <sku> and <sku> is off"
    assert normalise("HTTPError: " + "a-" * 2000) == ("HTTPError: " + "a-" * 2000)[:500]  # no SKU, no number in it
    assert normalise("x" * 70 + "-1") == "x" * 70 + "<n>"  # a digit beyond a SKU's length: a number, not a SKU
