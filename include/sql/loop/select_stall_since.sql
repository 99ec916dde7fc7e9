-- The stall an intraday run's stalled walk continues: when the feed run before it (the latest one
-- that read the feed: skipped runs did not, and runs whose walk failed left no row) stalled too,
-- the run that began that stall; else none (this run begins a new one). One alert per stall: the
-- stall ends when a walk ends any other way (reaching the WMS's newest sequence, a gap, a bound).
SELECT CASE WHEN f.stalled IS NOT NULL THEN coalesce(f.stall_since, f.run_id) END
  FROM stocksync.feed_runs f
  JOIN stocksync.sync_runs r ON r.run_id = f.run_id
 WHERE f.run_id <> %(run_id)s
   AND f.skipped IS NULL
   AND r.started_at <= (SELECT started_at FROM stocksync.sync_runs WHERE run_id = %(run_id)s)
 ORDER BY r.started_at DESC, f.recorded_at DESC
 LIMIT 1
