-- Migration 0002: a run keeps its first cause and every failed attempt, what it accepted with a
-- warning, and the options it was triggered with (its spec is resolved once and stored).
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS first_error text;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS attempts jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS warnings jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS options jsonb NOT NULL DEFAULT '{}'::jsonb;
