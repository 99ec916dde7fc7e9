UPDATE stocksync.sync_runs
   SET status = 'failed', error = %(error)s, finished_at = clock_timestamp()
 WHERE run_id = %(run_id)s AND status = 'running'
