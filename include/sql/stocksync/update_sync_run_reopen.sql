-- A retried or re-run stage re-opens a run that an earlier attempt marked failed.
UPDATE stocksync.sync_runs SET status = 'running', error = NULL, finished_at = NULL, closed_at = NULL,
                                heartbeat_at = clock_timestamp()
 WHERE run_id = %(run_id)s AND status = 'failed'
