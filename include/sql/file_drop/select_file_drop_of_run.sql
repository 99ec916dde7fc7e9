-- The file a run claimed and has not settled yet.
SELECT drop_id, location, data_file, manifest_file, snapshot_id, sha256, reason, duplicate_of
  FROM stocksync.file_drops
 WHERE run_id = %(run_id)s AND status = 'claimed'
 ORDER BY drop_id DESC
 LIMIT 1
