-- Where the file went and why: processed, duplicate, rejected, or released (left in the folder).
UPDATE stocksync.file_drops
   SET status = %(status)s, moved_to = %(moved_to)s, reason = coalesce(%(reason)s, reason),
       settled_at = clock_timestamp()
 WHERE drop_id = %(drop_id)s
