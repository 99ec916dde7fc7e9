UPDATE stocksync.sync_runs SET status = 'dry_run', finished_at = clock_timestamp(), error = NULL
 WHERE run_id = %(run_id)s AND status = 'running'
