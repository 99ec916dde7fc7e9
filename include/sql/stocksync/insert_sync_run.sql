-- Open (or re-open, on a retry) the run record with its spec. A finished run keeps its result,
-- and a re-opened run keeps the spec it was opened with.
-- No row comes back when the run id is already another DAG's: the caller refuses the run.
INSERT INTO stocksync.sync_runs (run_id, dag_id, freeze_mode, adjustment_mode, watermark_source, settings,
                                 options, triggered_by, override_reason, report_path)
VALUES (%(run_id)s, %(dag_id)s, %(freeze_mode)s, %(adjustment_mode)s, %(watermark_source)s, %(settings)s::jsonb,
        %(options)s::jsonb, %(triggered_by)s, %(override_reason)s, %(report_path)s)
ON CONFLICT (run_id) DO UPDATE
   SET status = CASE WHEN stocksync.sync_runs.status = 'failed' THEN 'running' ELSE stocksync.sync_runs.status END,
       heartbeat_at = clock_timestamp(),
       closed_at = CASE WHEN stocksync.sync_runs.status = 'failed' THEN NULL ELSE stocksync.sync_runs.closed_at END,
       error = CASE WHEN stocksync.sync_runs.status = 'failed' THEN NULL ELSE stocksync.sync_runs.error END
 WHERE stocksync.sync_runs.dag_id = EXCLUDED.dag_id
RETURNING status
