SELECT run_id, applied_at FROM stocksync.applied_snapshots WHERE snapshot_id = %(snapshot_id)s
