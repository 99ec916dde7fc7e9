-- A claim whose run is over (finished, failed, abandoned) without settling its file holds it no
-- longer: the file is free for the next run.
UPDATE stocksync.file_drops d
   SET status = 'released', settled_at = clock_timestamp(),
       reason = coalesce(d.reason, 'its run ended without settling the file')
  FROM stocksync.sync_runs r
 WHERE r.run_id = d.run_id AND r.status <> 'running'
   AND d.status = 'claimed' AND d.location = %(location)s AND d.data_file = %(data_file)s
   AND d.run_id <> %(run_id)s
