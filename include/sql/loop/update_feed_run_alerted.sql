UPDATE stocksync.feed_runs SET gap_alerted = true WHERE run_id = %(run_id)s
