-- Migration 0003: the availability service's SKU mapping and counters
-- (include/stocksync/availability, docs/availability.md).
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
