UPDATE stocksync.order_push_runs
   SET finished_at = clock_timestamp(), error = %(error)s
 WHERE run_id = %(run_id)s
RETURNING batches, sent, repeated, acknowledged, dead_lettered, requeued, cancels_sent, cancels_refused,
          rate_limited, waited_seconds, receipts_corrected, stopped
