SELECT run_id, after_seq, through_seq, head_seq, events, skus, pages, gap, gap_alerted, skipped, stalled,
       stall_since, stopped, stale_events, stale_seqs, duplicate_events
  FROM stocksync.feed_runs
 WHERE run_id = %(run_id)s
