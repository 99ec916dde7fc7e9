UPDATE stocksync.sync_runs
   SET guardrails = %(guardrails)s::jsonb, override_reason = %(override_reason)s
 WHERE run_id = %(run_id)s
