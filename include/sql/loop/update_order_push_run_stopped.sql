-- Why the run ended before its queue was empty (the next run goes on from there).
UPDATE stocksync.order_push_runs SET stopped = %(stopped)s WHERE run_id = %(run_id)s
