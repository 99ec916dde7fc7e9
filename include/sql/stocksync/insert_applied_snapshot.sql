INSERT INTO stocksync.applied_snapshots (snapshot_id, run_id) VALUES (%(snapshot_id)s, %(run_id)s)
