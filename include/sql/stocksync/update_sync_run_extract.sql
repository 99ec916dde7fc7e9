UPDATE stocksync.sync_runs
   SET staging_table = %(staging_table)s, snapshot_id = %(snapshot_id)s,
       snapshot_taken_at = %(snapshot_taken_at)s, orders_counted_until = %(orders_counted_until)s,
       request_started_at = %(request_started_at)s, pages = %(pages)s, extracted = %(extracted)s
 WHERE run_id = %(run_id)s
