-- One row per stock sync run for the Airflow "Stock sync" page (plugins/stocksync_plugin.py), newest
-- first: every run record, and the runs that never got one of their own, taken from the failure
-- alerts of a sync DAG (`sync_dags`) whose (dag_id, run_id) has no record, sent by a task that runs
-- before the record is opened (`early_tasks`: the setup, the file-source wait): refused at their
-- first task (a bad parameter, a run id the other DAG already used) or failed before it.
-- Filters, NULL meaning any: `dag_id`, `status`, started at or after `since`, before `until`.
WITH recorded AS (
    SELECT r.run_id, r.dag_id, r.status, r.started_at, r.finished_at, r.closed_at, r.freeze_mode, r.freeze_seconds,
           r.changed, r.clamped, r.unchanged, r.stale, r.duplicate, r.unknown, r.extracted, r.quarantined,
           r.dq_success, r.guardrails, r.options, r.triggered_by, r.override_reason, r.error, r.first_error,
           r.stage_seconds, r.warnings, r.attempts, r.report_path, NULL::text AS failed_task,
           coalesce(m.skus_changed, (r.apply_details -> 'planned' ->> 'skus_changed')::bigint) AS skus_moved,
           coalesce(m.units_up, (r.apply_details -> 'planned' ->> 'units_up')::bigint) AS units_up,
           coalesce(m.units_down, (r.apply_details -> 'planned' ->> 'units_down')::bigint) AS units_down,
           true AS recorded
      FROM stocksync.sync_runs r
      -- what this run applied, from its own audit rows (any sync DAG: nightly, push, intraday); a dry
      -- run's plan figures are on its record (report.record_planned)
      LEFT JOIN LATERAL ({movement}) m ON r.status = 'applied'
),
unrecorded AS (
    SELECT DISTINCT ON (a.dag_id, a.run_id)
           a.run_id, a.dag_id, CASE WHEN a.task_id = 'freeze_checkout' THEN 'refused' ELSE 'failed' END AS status,
           a.sent_at AS started_at, a.sent_at AS finished_at, a.sent_at AS closed_at, NULL::text AS freeze_mode,
           NULL::float8 AS freeze_seconds, NULL::int AS changed, NULL::int AS clamped, NULL::int AS unchanged,
           NULL::int AS stale, NULL::int AS duplicate, NULL::int AS unknown, NULL::int AS extracted,
           NULL::int AS quarantined, NULL::boolean AS dq_success, NULL::jsonb AS guardrails, NULL::jsonb AS options,
           NULL::text AS triggered_by, NULL::text AS override_reason, a.error, a.error AS first_error,
           jsonb_build_object() AS stage_seconds, '[]'::jsonb AS warnings, '[]'::jsonb AS attempts, NULL::text AS report_path,
           a.task_id AS failed_task, NULL::bigint AS skus_moved, NULL::bigint AS units_up, NULL::bigint AS units_down,
           false AS recorded
      FROM stocksync.alerts a
     WHERE a.dag_id = ANY(%(sync_dags)s::text[])
       AND a.task_id = ANY(%(early_tasks)s::text[])
       AND a.kind = 'task_failed'
       AND NOT EXISTS (SELECT 1 FROM stocksync.sync_runs r WHERE r.run_id = a.run_id AND r.dag_id = a.dag_id)
     ORDER BY a.dag_id, a.run_id, a.sent_at, a.alert_id
),
runs AS (
    SELECT * FROM recorded
    UNION ALL
    SELECT * FROM unrecorded
)
SELECT runs.*,
       (SELECT count(*) FROM stocksync.alerts a WHERE a.run_id = runs.run_id AND a.dag_id = runs.dag_id) AS alerts,
       (SELECT count(*) FROM stocksync.dq_results d
         WHERE runs.recorded AND d.run_id = runs.run_id AND NOT d.success AND d.policy <> 'overridden') AS failed_checks,
       (SELECT count(*) FROM stocksync.dq_results d WHERE runs.recorded AND d.run_id = runs.run_id) AS checks,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('check_name', d.check_name, 'success', d.success,
                                                     'policy', d.policy, 'observed', left(d.observed, 300))
                                  ORDER BY d.check_name), '[]'::jsonb)
          FROM stocksync.dq_results d
         WHERE runs.recorded AND d.run_id = runs.run_id AND NOT d.success) AS failed_check_rows
  FROM runs
 WHERE (%(dag_id)s::text IS NULL OR runs.dag_id = %(dag_id)s::text)
   AND (%(status)s::text IS NULL OR runs.status = %(status)s::text)
   AND (%(since)s::timestamptz IS NULL OR runs.started_at >= %(since)s::timestamptz)
   AND (%(until)s::timestamptz IS NULL OR runs.started_at < %(until)s::timestamptz)
 ORDER BY runs.started_at DESC, runs.run_id
 LIMIT %(limit)s OFFSET %(offset)s
