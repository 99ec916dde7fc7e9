-- A full-mode run's time budget: it must be done by its freeze's expiry. A retried setup keeps the first.
UPDATE stocksync.sync_runs
   SET budget_until = %(budget_until)s
 WHERE run_id = %(run_id)s AND budget_until IS NULL
