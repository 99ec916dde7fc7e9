-- What the claimed file's manifest says.
UPDATE stocksync.file_drops
   SET manifest = %(manifest)s::jsonb, snapshot_id = %(snapshot_id)s, sha256 = %(sha256)s, row_count = %(row_count)s
 WHERE drop_id = %(drop_id)s
