-- Add one batch's (or step's) figures to the run.
UPDATE stocksync.order_push_runs
   SET batches = batches + %(batches)s, sent = sent + %(sent)s, repeated = repeated + %(repeated)s,
       acknowledged = acknowledged + %(acknowledged)s, dead_lettered = dead_lettered + %(dead_lettered)s,
       requeued = requeued + %(requeued)s, cancels_sent = cancels_sent + %(cancels_sent)s,
       cancels_refused = cancels_refused + %(cancels_refused)s, rate_limited = rate_limited + %(rate_limited)s,
       waited_seconds = waited_seconds + %(waited_seconds)s,
       receipts_corrected = receipts_corrected + %(receipts_corrected)s
 WHERE run_id = %(run_id)s
