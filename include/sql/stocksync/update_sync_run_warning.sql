-- Something the run survived but someone should know (a report it could not write, a dead run's
-- freeze it released): appended to the run's warnings with the time.
UPDATE stocksync.sync_runs
   SET warnings = warnings || jsonb_build_array(%(warning)s::jsonb || jsonb_build_object('at', clock_timestamp()))
 WHERE run_id = %(run_id)s
