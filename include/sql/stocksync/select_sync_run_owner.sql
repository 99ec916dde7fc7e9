-- The DAG a run record belongs to.
SELECT dag_id FROM stocksync.sync_runs WHERE run_id = %(run_id)s
