-- Migration 0009: the order push paces itself to a rate-limited WMS and keeps receipt times sane.
-- A run records how often the WMS asked it to slow down (429), how long it waited, why it stopped
-- before the queue was empty (its time budget), and how many receipt times it had to correct.
ALTER TABLE stocksync.order_push_runs ADD COLUMN IF NOT EXISTS rate_limited integer NOT NULL DEFAULT 0;
ALTER TABLE stocksync.order_push_runs ADD COLUMN IF NOT EXISTS waited_seconds double precision NOT NULL DEFAULT 0;
ALTER TABLE stocksync.order_push_runs ADD COLUMN IF NOT EXISTS receipts_corrected integer NOT NULL DEFAULT 0;
ALTER TABLE stocksync.order_push_runs ADD COLUMN IF NOT EXISTS stopped text;
-- A receipt whose received_at was not sane (later than its answer arrived, or before the order was
-- created, beyond clock_skew_seconds): the WMS's time as given, and why acknowledged_at differs.
ALTER TABLE stocksync.order_pushes ADD COLUMN IF NOT EXISTS wms_received_at timestamptz;
ALTER TABLE stocksync.order_pushes ADD COLUMN IF NOT EXISTS receipt_time_note text;
