-- A dry run's plan figures on its record (apply_details.planned: SKUs that would change, units up and
-- down, SKUs that would go to 0), so the runs page shows them after its plan table is dropped.
UPDATE stocksync.sync_runs
   SET apply_details = coalesce(apply_details, '{}'::jsonb) || jsonb_build_object('planned', %(planned)s::jsonb)
 WHERE run_id = %(run_id)s
