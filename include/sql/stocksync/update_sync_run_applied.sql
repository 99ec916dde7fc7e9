UPDATE stocksync.sync_runs
   SET status = %(status)s, changed = %(changed)s, unchanged = %(unchanged)s, stale = %(stale)s,
       clamped = %(clamped)s, duplicate = %(duplicate)s, unknown = %(unknown)s, valid = coalesce(valid, %(valid)s),
       watermark = %(watermark)s, watermark_source = %(watermark_source)s, error = NULL,
       apply_details = %(apply_details)s::jsonb
 WHERE run_id = %(run_id)s
