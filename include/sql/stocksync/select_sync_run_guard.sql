-- What a step checks before it starts (include/stocksync/runs/lifecycle.py): whether the run was declared
-- dead, and how many seconds of its time budget are left (NULL: no budget, not a full-mode run).
-- The database clock is the one the freeze's expiry uses.
SELECT status,
       closed_at IS NOT NULL AS closed,
       extract(epoch FROM budget_until - clock_timestamp())::float8 AS budget_left,
       settings
  FROM stocksync.sync_runs
 WHERE run_id = %(run_id)s
