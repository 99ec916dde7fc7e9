-- Serialise the writers of one run's report (the teardown and the failure notifier) for this
-- transaction, so the last one to write has read everything the other committed.
SELECT pg_advisory_xact_lock(hashtextextended('stocksync.report:' || %(run_id)s, 0))
