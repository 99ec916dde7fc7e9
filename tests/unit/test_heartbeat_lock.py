"""The heartbeat thread never waits on its own step: while the step's transaction holds
the run's row (the apply locks it for its whole transaction), a beat is skipped instead of blocking
until the commit, which held the step's end up to the thread's join timeout (interval + 10 s: 20 s
on the load step at 10M SKUs, inside the apply-mode freeze). Real PostgreSQL test cluster."""

from __future__ import annotations

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


def test_a_beat_skips_the_row_its_step_holds_and_stops_at_once(clean_shop: str) -> None:
    run_id = "heartbeat-under-lock"
    open_run(clean_shop, run_id=run_id, dag_id="test", settings=load_settings(CONFIG_PATH, environ={}))
    before = heartbeat_at(clean_shop, run_id)
    with connect(clean_shop) as step:  # the step's transaction, as the apply holds it
        step.execute("SELECT status FROM stocksync.sync_runs WHERE run_id = %s FOR UPDATE", (run_id,))
        beat = Heartbeat(clean_shop, run_id, 0.1).__enter__()
        time.sleep(0.5)  # a few beats fall while the row is held
        started = time.perf_counter()
        beat.stop()
        stopped_in = time.perf_counter() - started
        step.commit()
    assert stopped_in < 1.0  # was interval + 10 s, the thread blocked on the row lock
    assert heartbeat_at(clean_shop, run_id) == before  # the held beats were skipped, not queued

    beat = Heartbeat(clean_shop, run_id, 0.1).__enter__()
    time.sleep(0.5)
    beat.stop()
    assert heartbeat_at(clean_shop, run_id) != before  # free again: it beats
