"""The nightly runs at the shop's local quiet hour all year (`shop_timezone`): asked through the real
DAG's own timetable, across both daylight-saving nights of Europe/Berlin in 2026 (29 March: 02:00 →
03:00; 25 October: 03:00 → 02:00), it runs exactly once every local night, never skipping the
spring night (which has no 02:30) and never running the autumn night (which has two) twice.

The expected instants come from Python's zoneinfo (the IANA database), not from Airflow.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

BERLIN = ZoneInfo("Europe/Berlin")
SPRING, AUTUMN = date(2026, 3, 29), date(2026, 10, 25)


def _nightly(monkeypatch: pytest.MonkeyPatch, zone: str) -> Any:
    from include.stocksync.airflow.dag_factory import build_sync_dag
    from include.stocksync.config.settings import load_settings

    monkeypatch.setenv("STOCKSYNC_SHOP_TIMEZONE", zone)
    monkeypatch.setenv("STOCKSYNC_SCHEDULE", "30 2 * * *")
    return build_sync_dag(dag_id="inventory_nightly_sync", schedule=load_settings().schedule, doc_md=None,
                          tags=["stocksync"])


def _runs(dag: Any, first: datetime, count: int) -> list[datetime]:
    """The next `count` scheduled runs after `first`, as the scheduler asks the DAG's timetable."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=first, latest=None, catchup=True)
    runs, last = [], None
    for _ in range(count):
        info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        runs.append(info.run_after.astimezone(timezone.utc))
        last = info.data_interval
    return runs


def _local_0230(day: date, fold: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 30, tzinfo=BERLIN, fold=fold).astimezone(timezone.utc)


@pytest.mark.parametrize("night", [SPRING, AUTUMN], ids=["spring-forward", "fall-back"])
def test_the_nightly_runs_once_every_local_night_across_daylight_saving(
        airflow: dict[str, str], monkeypatch: pytest.MonkeyPatch, night: date) -> None:
    dag = _nightly(monkeypatch, "Europe/Berlin")
    days = [night + timedelta(days=d) for d in range(-3, 4)]
    runs = _runs(dag, datetime.combine(days[0], datetime.min.time(), BERLIN), len(days))
    assert [r.astimezone(BERLIN).date() for r in runs] == days  # one run a local night: none skipped, none twice
    for day, run in zip(days, runs, strict=True):
        if day == AUTUMN:  # 02:30 happens twice: one of them, once
            assert run in (_local_0230(day, fold=0), _local_0230(day, fold=1)), run
        else:  # the spring night's 02:30 does not exist: zoneinfo reads it with the winter offset (01:30 UTC)
            assert run == _local_0230(day), (day, run)
    assert night != SPRING or runs[3] == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)
    # the local hour holds: 01:30 UTC in winter, 00:30 UTC in summer
    assert runs[0].hour == (1 if night == SPRING else 0) and runs[-1].hour == (0 if night == SPRING else 1)


def test_a_zone_that_does_not_exist_is_refused_naming_the_setting() -> None:
    from include.stocksync.config.settings import ConfigError, load_settings

    for bad in ("Europe/Atlantis", "+01:00", "../../etc/passwd"):
        with pytest.raises(ConfigError, match="shop_timezone must be an IANA time zone name"):
            load_settings(environ={"STOCKSYNC_SHOP_TIMEZONE": bad})
