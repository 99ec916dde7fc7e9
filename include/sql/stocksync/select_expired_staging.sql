-- Runs whose staging tables (raw counts and plan) are past the retention: they are only
-- needed to re-run a task of a recent run.
SELECT run_id, staging_table
  FROM stocksync.sync_runs
 WHERE staging_table IS NOT NULL
   AND finished_at < now() - make_interval(days => %(retention_days)s)
