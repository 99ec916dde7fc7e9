SELECT run_id, after_seq, through_seq, head_seq, events, skus, pages, gap, gap_alerted, skipped
  FROM stocksync.feed_runs
 WHERE run_id = %(run_id)s
