-- Declare a dead run dead: a run that had not finished becomes 'abandoned' (an applied or duplicate
-- run keeps its result: only its teardown never ran), it is closed, and the note saying who found
-- it and what was released goes to its warnings (and to its error, when it has none).
-- Returns nothing when it was already closed (someone else declared it first).
UPDATE stocksync.sync_runs
   SET status = CASE WHEN status IN ('running', 'failed') THEN 'abandoned' ELSE status END,
       error = CASE WHEN status IN ('running', 'failed') THEN coalesce(error, %(note)s) ELSE error END,
       first_error = CASE WHEN status IN ('running', 'failed') THEN coalesce(first_error, %(note)s)
                          ELSE first_error END,
       finished_at = coalesce(finished_at, clock_timestamp()),
       closed_at = clock_timestamp(),
       freeze_seconds = coalesce(%(freeze_seconds)s, freeze_seconds),
       warnings = warnings || jsonb_build_array(%(warning)s::jsonb || jsonb_build_object('at', clock_timestamp()))
 WHERE run_id = %(run_id)s AND closed_at IS NULL
RETURNING status
