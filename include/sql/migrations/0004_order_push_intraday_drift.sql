-- Migration 0004: the other half of the loop (docs/order-push-and-intraday.md): what stocksync sent
-- to the WMS for each shop order, the orders the WMS refused, the intraday change-feed runs, and
-- the drift each full sync corrected, night by night.

-- One row per shop order the order push sent (or tried to): the WMS's receipt and its own
-- acknowledgement time (also written on the shop's order), and the cancellation when one was sent.
-- No foreign key to the shop: the shop is an adapter (docs/shop-adapter.md).
CREATE TABLE IF NOT EXISTS stocksync.order_pushes (
    order_id          bigint PRIMARY KEY,
    idempotency_key   text NOT NULL,
    receipt_id        text,
    acknowledged_at   timestamptz,            -- the WMS's received_at (server time, not ours)
    first_sent_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    recorded_at       timestamptz,            -- when we recorded the receipt
    answers           jsonb NOT NULL DEFAULT '[]'::jsonb,  -- every HTTP status the WMS answered, in order
    cancel_receipt_id text,
    cancelled_at      timestamptz,            -- the WMS's cancelled_at
    cancel_refused    text                    -- why the WMS would not cancel (e.g. already shipped)
);
CREATE INDEX IF NOT EXISTS order_pushes_uncancelled_idx ON stocksync.order_pushes (order_id)
    WHERE cancelled_at IS NULL AND cancel_refused IS NULL AND acknowledged_at IS NOT NULL;

-- Orders the WMS refused (unknown SKU, insufficient stock, invalid), with its reason. A row without
-- requeued_at keeps the order out of the push; ops re-queue it (the DAG's requeue parameters or
-- `python -m include.stocksync.sync.order_push requeue`), which keeps the row as history.
CREATE TABLE IF NOT EXISTS stocksync.order_dead_letters (
    dead_letter_id bigserial PRIMARY KEY,
    order_id       bigint NOT NULL,
    http_status    integer NOT NULL,
    reason         text NOT NULL,
    body           jsonb,
    run_id         text,
    refused_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    requeued_at    timestamptz,
    requeued_by    text
);
CREATE UNIQUE INDEX IF NOT EXISTS order_dead_letters_open_idx ON stocksync.order_dead_letters (order_id)
    WHERE requeued_at IS NULL;

-- One row per run of the order push: what it did (the figures ops and the trading-day test read).
CREATE TABLE IF NOT EXISTS stocksync.order_push_runs (
    run_id         text PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at    timestamptz,
    batches        integer NOT NULL DEFAULT 0,
    sent           integer NOT NULL DEFAULT 0,   -- POSTs answered 201 (new to the WMS)
    repeated       integer NOT NULL DEFAULT 0,   -- POSTs answered 200 (the WMS already had it)
    acknowledged   integer NOT NULL DEFAULT 0,   -- acknowledgements recorded on shop orders
    dead_lettered  integer NOT NULL DEFAULT 0,
    requeued       integer NOT NULL DEFAULT 0,
    cancels_sent   integer NOT NULL DEFAULT 0,
    cancels_refused integer NOT NULL DEFAULT 0,
    error          text
);

-- The change-feed side of an intraday run (its run record is the usual stocksync.sync_runs row):
-- where it read from and to, how many events, and a gap when the feed could not continue.
CREATE TABLE IF NOT EXISTS stocksync.feed_runs (
    run_id        text PRIMARY KEY REFERENCES stocksync.sync_runs (run_id),
    after_seq     bigint,                       -- the last applied WMS sequence it started from
    through_seq   bigint,                       -- the last sequence it read (its new position)
    head_seq      bigint,                       -- the WMS's newest sequence at the last page
    events        integer NOT NULL DEFAULT 0,
    skus          integer NOT NULL DEFAULT 0,
    pages         integer NOT NULL DEFAULT 0,
    gap           text,                         -- why the feed could not continue, or NULL
    gap_alerted   boolean NOT NULL DEFAULT false,
    skipped       text,                         -- why the run did not read (a full sync running)
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Drift a full sync corrected, per run (one per night for the nightly): taken from its audit rows
-- inside the apply transaction, before the write.
CREATE TABLE IF NOT EXISTS stocksync.drift_history (
    run_id        text PRIMARY KEY REFERENCES stocksync.sync_runs (run_id),
    dag_id        text NOT NULL,
    night         date NOT NULL,                -- UTC date the run started
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    skus_checked  integer NOT NULL,
    skus_off      integer NOT NULL,             -- SKUs whose shop figure was not the WMS's
    units_over    bigint NOT NULL,              -- shop above the truth: oversell risk
    units_under   bigint NOT NULL,              -- shop below the truth: lost sales
    trend_skus_off double precision,            -- median skus_off of the nights before (NULL: too few)
    alert         boolean NOT NULL DEFAULT false,
    alert_reason  text
);
CREATE INDEX IF NOT EXISTS drift_history_night_idx ON stocksync.drift_history (night);

-- Per SKU, the drift of a full sync's audit row: the audit keeps old and new, this names them.
CREATE OR REPLACE VIEW stocksync.sku_drift AS
SELECT a.run_id, a.sku, a.old_qty, a.new_qty,
       greatest(a.old_qty - a.new_qty, 0) AS units_over,
       greatest(a.new_qty - a.old_qty, 0) AS units_under
  FROM stocksync.sku_audit a
 WHERE a.outcome IN ('changed', 'clamped') AND a.new_qty IS DISTINCT FROM a.old_qty;
