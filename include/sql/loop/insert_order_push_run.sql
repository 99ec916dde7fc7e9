INSERT INTO stocksync.order_push_runs (run_id) VALUES (%(run_id)s)
ON CONFLICT (run_id) DO UPDATE SET finished_at = NULL, error = NULL
