-- A running step's heartbeat (its own connection, every operations.heartbeat_interval_seconds).
-- Returns the status: a run declared dead (abandoned) stops beating.
UPDATE stocksync.sync_runs
   SET heartbeat_at = clock_timestamp()
 WHERE run_id = %(run_id)s AND status <> 'abandoned'
RETURNING status
