-- The day's run record of the availability service's live write-backs (dag_id availability_live,
-- run_id availability_live__<UTC date>): opened by the first write-back of the day, then its
-- finish time and counters move with every write-back (changed/unchanged/clamped count
-- write-backs, not distinct SKUs). No row back: the run id belongs to another DAG.
INSERT INTO stocksync.sync_runs (run_id, dag_id, status, started_at, finished_at, freeze_mode, adjustment_mode,
                                 watermark_source, settings, triggered_by, changed, unchanged, clamped)
VALUES (%(run_id)s, 'availability_live', 'applied', clock_timestamp(), clock_timestamp(), 'none', 'unsent_orders',
        'wms', %(settings)s, 'availability service (live mode)',
        (%(outcome)s = 'changed')::int, (%(outcome)s = 'unchanged')::int, (%(outcome)s = 'clamped')::int)
ON CONFLICT (run_id) DO UPDATE
   SET finished_at = clock_timestamp(),
       changed = coalesce(stocksync.sync_runs.changed, 0) + (%(outcome)s = 'changed')::int,
       unchanged = coalesce(stocksync.sync_runs.unchanged, 0) + (%(outcome)s = 'unchanged')::int,
       clamped = coalesce(stocksync.sync_runs.clamped, 0) + (%(outcome)s = 'clamped')::int
 WHERE stocksync.sync_runs.dag_id = 'availability_live'
RETURNING run_id
