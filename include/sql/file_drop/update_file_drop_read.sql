-- The file was read to its end and is what its manifest says (committed with the staged rows).
UPDATE stocksync.file_drops
   SET sha256_verified = true, bytes = %(bytes)s, rows_read = %(rows_read)s, reason = NULL
 WHERE drop_id = %(drop_id)s
