-- Migration 0008: how an intraday run's walk of the WMS change feed ended, beyond a gap
-- (docs/order-push-and-intraday.md): the feed stalled (it gave nothing new while the WMS's newest
-- sequence was further on), a bound of ours stopped the walk (feed_max_events, the deadline), and
-- the events it skipped (stale: at or below the position they were read from; served twice).
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS stalled text;           -- why the feed stopped early, or NULL
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS stall_since text;       -- the run that began this stall
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS stopped text;           -- the bound that ended the walk, or NULL
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS stale_events integer NOT NULL DEFAULT 0;
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS stale_seqs bigint[] NOT NULL DEFAULT '{}';  -- the first few
ALTER TABLE stocksync.feed_runs ADD COLUMN IF NOT EXISTS duplicate_events integer NOT NULL DEFAULT 0;
