-- Record how long a stage took (seconds), keyed by stage name; a step's end is also a heartbeat.
UPDATE stocksync.sync_runs
   SET stage_seconds = stage_seconds || jsonb_build_object(%(stage)s::text, %(seconds)s::float8),
       heartbeat_at = clock_timestamp()
 WHERE run_id = %(run_id)s
