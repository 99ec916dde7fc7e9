-- The first cause of a run's failure (kept through its retries), for the alert.
SELECT first_error FROM stocksync.sync_runs WHERE run_id = %(run_id)s AND dag_id = %(dag_id)s
