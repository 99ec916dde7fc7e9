INSERT INTO stocksync.dq_results (run_id, check_name, success, policy, observed, examples)
VALUES (%(run_id)s, %(check_name)s, %(success)s, %(policy)s, %(observed)s, %(examples)s::jsonb)
ON CONFLICT (run_id, check_name) DO UPDATE
   SET success = excluded.success, policy = excluded.policy, observed = excluded.observed,
       examples = excluded.examples, recorded_at = clock_timestamp()
