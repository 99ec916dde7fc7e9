-- stocksync's own bookkeeping: runs, audit per SKU, applied snapshots, DQ results.
CREATE SCHEMA IF NOT EXISTS stocksync;

CREATE TABLE IF NOT EXISTS stocksync.sync_runs (
    run_id               text PRIMARY KEY,
    dag_id               text NOT NULL,
    status               text NOT NULL DEFAULT 'running',  -- running | applied | duplicate | dry_run | failed
    started_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at          timestamptz,
    freeze_mode          text NOT NULL,
    adjustment_mode      text NOT NULL,
    watermark_source     text NOT NULL,
    settings             jsonb NOT NULL,
    staging_table        text,
    snapshot_id          text,
    snapshot_taken_at    timestamptz,
    orders_counted_until timestamptz,
    request_started_at   timestamptz,
    watermark            timestamptz,
    pages                integer,
    extracted            integer,
    valid                integer,
    changed              integer,
    unchanged            integer,
    stale                integer,
    clamped              integer,
    duplicate            integer,
    unknown              integer,
    freeze_seconds       double precision,
    stage_seconds        jsonb NOT NULL DEFAULT '{}'::jsonb,
    apply_details        jsonb,
    quarantined          integer,
    guardrails           jsonb,
    dq_success           boolean,
    report_path          text,
    triggered_by         text,
    override_reason      text,
    error                text,
    first_error          text,                              -- the first cause, kept through retries
    attempts             jsonb NOT NULL DEFAULT '[]'::jsonb, -- every failed attempt: stage, error, when
    warnings             jsonb NOT NULL DEFAULT '[]'::jsonb  -- what the run accepted but an operator should know
);

ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS apply_details jsonb;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS quarantined integer;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS guardrails jsonb;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS first_error text;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS attempts jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE stocksync.sync_runs ADD COLUMN IF NOT EXISTS warnings jsonb NOT NULL DEFAULT '[]'::jsonb;

CREATE TABLE IF NOT EXISTS stocksync.applied_snapshots (
    snapshot_id text PRIMARY KEY,
    run_id      text NOT NULL REFERENCES stocksync.sync_runs (run_id),
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per SKU per run: what the shop had, what the WMS said, the adjustment and the result.
-- No foreign key to sync_runs: the apply writes the run record in the same transaction, and a
-- per-row FK check doubles the cost of a million-row audit insert.
CREATE TABLE IF NOT EXISTS stocksync.sku_audit (
    run_id        text NOT NULL,
    sku           text NOT NULL,
    snapshot_id   text NOT NULL,
    old_qty       integer,
    old_seq       bigint,
    wms_available bigint NOT NULL,
    wms_seq       bigint NOT NULL,
    adjustment    bigint NOT NULL,
    new_qty       integer,
    outcome       text NOT NULL CHECK (outcome IN ('changed', 'unchanged', 'stale', 'clamped', 'duplicate', 'unknown')),
    PRIMARY KEY (run_id, sku)
);
ALTER TABLE stocksync.sku_audit DROP CONSTRAINT IF EXISTS sku_audit_run_id_fkey;

-- Rows a quarantine-policy check kept out of the load, with every reason and the raw values.
CREATE TABLE IF NOT EXISTS stocksync.quarantine (
    run_id   text NOT NULL REFERENCES stocksync.sync_runs (run_id),
    row_no   bigint NOT NULL,
    sku      text,
    reasons  text[] NOT NULL,
    raw      jsonb NOT NULL,
    PRIMARY KEY (run_id, row_no)
);

CREATE TABLE IF NOT EXISTS stocksync.dq_results (
    run_id     text NOT NULL REFERENCES stocksync.sync_runs (run_id),
    check_name text NOT NULL,
    success    boolean NOT NULL,
    policy     text NOT NULL DEFAULT 'fail',
    observed   text,
    examples   jsonb,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, check_name)
);

-- Failure alerts the DAGs' notifier sent (or tried to send), shown in the run report and on the
-- Airflow "Stock sync" page. No foreign key: a run can fail before its record exists.
CREATE TABLE IF NOT EXISTS stocksync.alerts (
    alert_id       bigserial PRIMARY KEY,
    run_id         text NOT NULL,
    dag_id         text NOT NULL,
    task_id        text NOT NULL,
    try_number     integer,
    sent_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    target         text NOT NULL,          -- the webhook connection and endpoint
    delivered      boolean NOT NULL,
    delivery_error text,                   -- why the webhook did not take it
    error          text                    -- the task's error the alert reported
);
CREATE INDEX IF NOT EXISTS alerts_run_id_idx ON stocksync.alerts (run_id);

-- ==================== availability service (include/stocksync/availability, docs/availability.md) ====================
-- Storefront item (code + selected options) -> shop SKU. options_key is the canonical form of the
-- options (include/stocksync/availability/skus.py: options_key): sorted `name=value` pairs joined
-- with '&', names and values trimmed, inner whitespace collapsed, case-folded, then percent-encoded;
-- '' for an item without options. A code with no row here is taken as the SKU itself.
CREATE TABLE IF NOT EXISTS stocksync.sku_map (
    code        text NOT NULL,
    options_key text NOT NULL DEFAULT '',
    sku         text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (code, options_key)
);

-- Counters of one service worker over one period (deltas, not running totals), written every
-- `stats_flush_seconds` and at shutdown; availability/select_recent_stats.sql sums them.
-- latency_buckets[i] counts answers with latency <= latency_bounds_ms[i] (and above the bound
-- before it); the last element counts those above every bound.
CREATE TABLE IF NOT EXISTS stocksync.availability_stats (
    stats_id          bigserial PRIMARY KEY,
    instance          text NOT NULL,                 -- host:pid of the worker
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    requests          bigint NOT NULL,
    answers           jsonb NOT NULL,                -- {"available": n, "unavailable": n, "unknown": n, "probe": n}
    unknown_causes    jsonb NOT NULL,                -- {"db_timeout": n, "unmapped_options": n, ...}
    rejected          jsonb NOT NULL,                -- {"forbidden_secret": n, "rate_limited": n, ...}
    live              jsonb NOT NULL,                -- {"written": n, "current": n, "fallback": n, "fallback_causes": {...}}
    latency_bounds_ms double precision[] NOT NULL,
    latency_buckets   bigint[] NOT NULL,
    latency_sum_ms    double precision NOT NULL,
    latency_max_ms    double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS availability_stats_period_end_idx ON stocksync.availability_stats (period_end);
-- ================================================ end of availability service ================================================
