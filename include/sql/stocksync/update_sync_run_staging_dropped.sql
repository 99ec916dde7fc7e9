UPDATE stocksync.sync_runs SET staging_table = NULL WHERE run_id = %(run_id)s
