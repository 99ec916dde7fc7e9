UPDATE stocksync.sync_runs SET dq_success = %(dq_success)s, valid = %(valid)s WHERE run_id = %(run_id)s
