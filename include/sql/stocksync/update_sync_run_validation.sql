UPDATE stocksync.sync_runs
   SET dq_success = %(dq_success)s, valid = %(valid)s, quarantined = %(quarantined)s
 WHERE run_id = %(run_id)s
