-- Every file a run took or set aside (tests, the report of a file-source run).
SELECT data_file, manifest_file, status, reason, duplicate_of, moved_to, sha256, sha256_verified, snapshot_id,
       row_count, rows_read, bytes
  FROM stocksync.file_drops
 WHERE run_id = %(run_id)s
 ORDER BY drop_id
