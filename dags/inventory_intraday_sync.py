"""
# inventory_intraday_sync

Airflow DAG, every 15 minutes (`loop.intraday_schedule`): apply what changed in the warehouse (WMS)
since the last applied sequence, between two nightly syncs (docs/order-push-and-intraday.md).

1. **open_intraday_run** (setup): the run record (freeze mode none: checkout is never frozen);
   `skipped` while a full sync is running.
2. **read_change_feed**: the WMS change feed after our last sequence, staged. A **gap** (the feed no
   longer reaches our sequence, its sequences jump, the WMS went back) ends the run as `gap`:
   nothing applied, one alert, the next full sync repairs it. A **stall** (nothing new while the
   WMS's newest sequence is further on) ends it `stalled`, one alert per stall; a walk stopped by
   `loop.feed_max_events` is applied, recorded and warned, and the next run goes on from it.
3. **validate_delta**: the nightly's data-quality checks, scaled to a delta.
4. **merge_delta**: `new = max(0, available - unsent orders)` for the changed SKUs; delta guard.
5. **apply_delta**: the nightly's atomic, seq-guarded apply (writer pool), no freeze.
6. **close_intraday_run** (teardown): record closed, report written.

With `loop.gap_triggers_full_sync`, a gap also triggers `inventory_nightly_sync` (**trigger_full_sync**).
"""

from include.stocksync.airflow.loop_dags import build_intraday_dag

build_intraday_dag(__doc__)
