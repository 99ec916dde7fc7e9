SELECT status, snapshot_id FROM stocksync.sync_runs WHERE run_id = %(run_id)s FOR UPDATE
