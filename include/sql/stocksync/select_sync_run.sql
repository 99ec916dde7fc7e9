SELECT * FROM stocksync.sync_runs WHERE run_id = %(run_id)s
