-- The run that already applied this file: the same verified bytes (checksum memory), or the
-- same snapshot id (as the apply recognises it). The earliest such run.
SELECT run_id, matched FROM (
    SELECT d.run_id, 'checksum' AS matched, r.finished_at AS at
      FROM stocksync.file_drops d JOIN stocksync.sync_runs r USING (run_id)
     WHERE d.sha256 = %(sha256)s AND d.sha256_verified AND r.status = 'applied' AND d.run_id <> %(run_id)s
    UNION ALL
    SELECT a.run_id, 'snapshot_id', a.applied_at
      FROM stocksync.applied_snapshots a
     WHERE a.snapshot_id = %(snapshot_id)s::text AND a.run_id <> %(run_id)s
) earlier
ORDER BY at NULLS LAST
LIMIT 1
