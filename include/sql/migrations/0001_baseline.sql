-- Migration 0001: stocksync's own bookkeeping as first released: runs, audit per SKU, applied snapshots,
-- DQ results, quarantine, alerts. Idempotent, so a database made by the old create script upgrades.
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
    error                text
);


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
