SELECT check_name, success, policy, observed, examples FROM stocksync.dq_results
 WHERE run_id = %(run_id)s ORDER BY success, check_name
