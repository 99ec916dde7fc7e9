-- A run that ends without applying anything, on purpose (the intraday sync): `skipped`
-- (a full sync was running, or there is no position to continue from), `gap` (the change feed
-- cannot continue from our position) or `stalled` (the feed gave nothing while the WMS's newest
-- sequence was further on), with the reason shown where errors show. Only a running
-- run takes it: a finished one keeps its result.
UPDATE stocksync.sync_runs
   SET status = %(status)s, error = %(reason)s,
       watermark = coalesce(%(watermark)s, watermark)
 WHERE run_id = %(run_id)s AND status = 'running'
RETURNING status
