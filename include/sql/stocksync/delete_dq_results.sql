DELETE FROM stocksync.dq_results WHERE run_id = %(run_id)s
