-- A dropped file that was already applied (same verified bytes or snapshot id) ends its
-- run as a duplicate at the extract step: nothing staged, nothing applied; the later steps see a
-- finished run and keep it.
UPDATE stocksync.sync_runs
   SET status = 'duplicate', snapshot_id = %(snapshot_id)s, snapshot_taken_at = %(snapshot_taken_at)s,
       orders_counted_until = %(orders_counted_until)s, request_started_at = %(request_started_at)s,
       pages = 0, extracted = 0, valid = 0, changed = 0, unchanged = 0, stale = 0, clamped = 0, duplicate = 0,
       unknown = 0, error = NULL, apply_details = %(apply_details)s::jsonb
 WHERE run_id = %(run_id)s AND status = 'running'
