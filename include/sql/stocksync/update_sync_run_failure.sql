-- A failed attempt: the latest error, the first cause (kept through retries) and the attempt list.
UPDATE stocksync.sync_runs
   SET status = CASE WHEN status = 'running' THEN 'failed' ELSE status END,
       finished_at = CASE WHEN status = 'running' THEN clock_timestamp() ELSE finished_at END,
       error = %(error)s,
       first_error = coalesce(first_error, %(error)s),
       attempts = attempts || jsonb_build_array(%(attempt)s::jsonb || jsonb_build_object('at', clock_timestamp()))
 WHERE run_id = %(run_id)s
