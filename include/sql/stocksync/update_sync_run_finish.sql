-- Close the run: freeze window, and 'failed' for a run that never got to apply.
UPDATE stocksync.sync_runs
   SET freeze_seconds = %(freeze_seconds)s,
       closed_at = clock_timestamp(),
       finished_at = coalesce(finished_at, clock_timestamp()),
       status = CASE WHEN status = 'running' THEN 'failed' ELSE status END,
       error = CASE WHEN status = 'running' THEN coalesce(error, 'the run ended before the apply step finished') ELSE error END
 WHERE run_id = %(run_id)s
RETURNING status
