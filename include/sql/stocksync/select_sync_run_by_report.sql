-- The run records a report folder belongs to, by the absolute path of its report.html as the run
-- recorded it (the Stock sync plugin serves a file of the folder only to users who may read that DAG).
SELECT run_id, dag_id FROM stocksync.sync_runs WHERE report_path = ANY(%(paths)s)
