-- The change-feed side of an intraday run (written in its extract step; a retry rewrites it).
INSERT INTO stocksync.feed_runs AS f (run_id, after_seq, through_seq, head_seq, events, skus, pages, gap, skipped,
                                      stalled, stall_since, stopped, stale_events, stale_seqs, duplicate_events)
VALUES (%(run_id)s, %(after_seq)s, %(through_seq)s, %(head_seq)s, %(events)s, %(skus)s, %(pages)s, %(gap)s,
        %(skipped)s, %(stalled)s, %(stall_since)s, %(stopped)s, %(stale_events)s, %(stale_seqs)s,
        %(duplicate_events)s)
ON CONFLICT (run_id) DO UPDATE
   SET after_seq = EXCLUDED.after_seq, through_seq = EXCLUDED.through_seq, head_seq = EXCLUDED.head_seq,
       events = EXCLUDED.events, skus = EXCLUDED.skus, pages = EXCLUDED.pages, gap = EXCLUDED.gap,
       skipped = EXCLUDED.skipped, stalled = EXCLUDED.stalled, stall_since = EXCLUDED.stall_since,
       stopped = EXCLUDED.stopped, stale_events = EXCLUDED.stale_events, stale_seqs = EXCLUDED.stale_seqs,
       duplicate_events = EXCLUDED.duplicate_events, recorded_at = clock_timestamp()
