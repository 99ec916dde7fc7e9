DELETE FROM stocksync.quarantine WHERE run_id = %(run_id)s
