-- A running step's heartbeat (its own connection, every operations.heartbeat_interval_seconds).
-- Returns the status: a run declared dead (abandoned) stops beating.
-- The heartbeat thread skips a beat while another transaction holds the run's row: that is the
-- step's own (the apply locks the row for its whole transaction, other steps write it before they
-- commit), alive by definition. Waiting for its commit held the step's end until the thread's join
-- timed out (interval + 10 s): 20 s measured on the load step at 10M SKUs, all of it
-- inside the apply-mode freeze.
UPDATE stocksync.sync_runs r
   SET heartbeat_at = clock_timestamp()
  FROM (SELECT run_id FROM stocksync.sync_runs
         WHERE run_id = %(run_id)s AND status <> 'abandoned'
           FOR UPDATE SKIP LOCKED) free
 WHERE r.run_id = free.run_id
RETURNING r.status
