-- Migration 0005 (operations under faults): a run's liveness and time budget, and alerts
-- that are delivered after the freeze is released and retried until delivered.

-- The run record's heartbeat: every step writes it when it starts and ends, and a heartbeat thread
-- (its own connection) every `operations.heartbeat_interval_seconds` while it runs. A run whose
-- heartbeat is older than the bound is dead, whatever killed it (kill -9 of a worker, a lost host),
-- so this works with any executor. New rows start beating when they are opened; rows from before
-- this migration keep NULL (their start time stands in).
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;
ALTER TABLE stocksync.sync_runs ALTER COLUMN heartbeat_at SET DEFAULT clock_timestamp();
-- When the teardown closed the run (NULL: the teardown has not run yet, or never will).
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS closed_at timestamptz;
-- Full freeze mode: the run must be done by then (its freeze expires then); steps cut their
-- timeouts to it and a run past it fails permanently, which releases the freeze.
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS budget_until timestamptz;
-- Runs that finished before this migration were closed by their teardown.
UPDATE stocksync.sync_runs SET closed_at = coalesce(finished_at, started_at)
 WHERE closed_at IS NULL AND status <> 'running';
CREATE INDEX IF NOT EXISTS sync_runs_open_idx ON stocksync.sync_runs (heartbeat_at) WHERE closed_at IS NULL;

-- Alerts: what kind, through which channel, the payload (so it can be sent again), and every
-- delivery attempt. A row with delivered = false is retried by the watchdog up to a bound.
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'task_failed';
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS channel text NOT NULL DEFAULT 'webhook';
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS payload jsonb;
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS subject text;          -- dedupe key (e.g. a freeze id)
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS queued_by text;        -- the run (or watchdog) whose teardown sends it
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS last_attempt_at timestamptz;
ALTER TABLE stocksync.alerts ADD COLUMN IF NOT EXISTS delivered_at timestamptz;
-- Alerts recorded before this migration were sent once, when they were recorded.
UPDATE stocksync.alerts SET attempts = 1, last_attempt_at = sent_at,
                            delivered_at = CASE WHEN delivered THEN sent_at END
 WHERE attempts = 0 AND payload IS NULL;
CREATE INDEX IF NOT EXISTS alerts_undelivered_idx ON stocksync.alerts (sent_at) WHERE NOT delivered;
CREATE INDEX IF NOT EXISTS alerts_subject_idx ON stocksync.alerts (kind, subject) WHERE subject IS NOT NULL;
