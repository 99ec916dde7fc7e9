-- Why the run refused or stopped on this file (kept when the step's own work is rolled back).
UPDATE stocksync.file_drops SET reason = %(reason)s WHERE drop_id = %(drop_id)s
