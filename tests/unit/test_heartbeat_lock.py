"""The heartbeat thread never waits on its own step: while the step's transaction holds
the run's row (the apply locks it for its whole transaction), a beat is skipped instead of blocking
until the commit, which held the step's end up to the thread's join timeout (interval + 10 s: 20 s
on the load step at 10M SKUs, inside the apply-mode freeze). Real PostgreSQL test cluster."""

from __future__ import annotations

import threading
import time

from include.stocksync.config.settings import CONFIG_PATH, load_settings
from include.stocksync.runs.lifecycle import Heartbeat
from include.stocksync.store.db import connect
from include.stocksync.sync.pipeline import open_run


def heartbeat_at(dsn: str, run_id: str) -> object:
    with connect(dsn) as conn:
        row = conn.execute("SELECT heartbeat_at FROM stocksync.sync_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return row[0]


def heartbeat_session_waits(dsn: str) -> list[str | None]:
    """What each heartbeat session is waiting on, from PostgreSQL's own view of its sessions."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT wait_event_type FROM pg_stat_activity "
                            "WHERE application_name = 'stocksync-heartbeat'").fetchall()
    return [row[0] for row in rows]


def heartbeat_threads(run_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"stocksync-heartbeat:{run_id}" and t.is_alive()]


def test_a_beat_skips_the_row_its_step_holds_and_stops_at_once(clean_shop: str) -> None:
    run_id = "heartbeat-under-lock"
    open_run(clean_shop, run_id=run_id, dag_id="test", settings=load_settings(CONFIG_PATH, environ={}))
    before = heartbeat_at(clean_shop, run_id)
    with connect(clean_shop) as step:  # the step's transaction, as the apply holds it
        step.execute("SELECT status FROM stocksync.sync_runs WHERE run_id = %s FOR UPDATE", (run_id,))
        beat = Heartbeat(clean_shop, run_id, 0.1).__enter__()
        time.sleep(0.5)  # a few beats fall while the row is held
        # the heartbeat is connected and waits on no lock ...
        waits = heartbeat_session_waits(clean_shop)
        for _ in range(100):  # a slow machine: wait for its first beat's connection
            if waits:
                break
            time.sleep(0.1)
            waits = heartbeat_session_waits(clean_shop)
        assert waits and "Lock" not in waits, waits
        assert len(heartbeat_threads(run_id)) == 1
        beat.stop()
        # ... and stop() returned with the thread ended, not at its join timeout with the thread
        # still blocked on the row the step holds
        assert heartbeat_threads(run_id) == []
        step.commit()
    assert heartbeat_at(clean_shop, run_id) == before  # the held beats were skipped, not queued

    beat = Heartbeat(clean_shop, run_id, 0.1).__enter__()
    time.sleep(0.5)
    beat.stop()
    assert heartbeat_at(clean_shop, run_id) != before  # free again: it beats
