UPDATE stocksync.file_drops SET duplicate_of = %(duplicate_of)s, reason = %(reason)s WHERE drop_id = %(drop_id)s
