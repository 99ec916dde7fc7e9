SELECT run_id, dag_id, claimed_at FROM stocksync.file_drops
 WHERE location = %(location)s AND data_file = %(data_file)s AND status = 'claimed'
