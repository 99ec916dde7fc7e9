-- Whether a gap at this position was already alerted (one alert per gap, not one per run).
SELECT EXISTS (SELECT 1 FROM stocksync.feed_runs
                WHERE after_seq = %(after_seq)s AND gap IS NOT NULL AND gap_alerted AND run_id <> %(run_id)s)
