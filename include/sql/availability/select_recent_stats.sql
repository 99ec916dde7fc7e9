-- The availability service over the last %(hours)s hours, one row per hour (newest first), for the
-- Airflow "Stock sync" page: answers by kind, unknown answers and rejected requests by cause, live
-- mode outcomes and latency, summed over every worker (stocksync.availability_stats holds deltas).
-- The percentiles come from the merged latency histogram, so each is the upper bound of the bucket
-- that holds it ("p95 <= 5 ms"); NULL means above the largest bound (see latency_max_ms). Rows
-- written with other bucket bounds than the hour's newest row are left out of the percentiles only.
WITH s AS (
    SELECT date_trunc('hour', st.period_end) AS hour, st.*
      FROM stocksync.availability_stats st
     WHERE st.period_end >= now() - make_interval(hours => %(hours)s)
),
totals AS (
    SELECT hour,
           count(DISTINCT instance) AS workers,
           min(period_start) AS first_period_start,
           max(period_end) AS last_period_end,
           sum(requests)::bigint AS requests,
           sum(coalesce((answers ->> 'available')::bigint, 0))::bigint AS available,
           sum(coalesce((answers ->> 'unavailable')::bigint, 0))::bigint AS unavailable,
           sum(coalesce((answers ->> 'unknown')::bigint, 0))::bigint AS unknown,
           sum(coalesce((answers ->> 'probe')::bigint, 0))::bigint AS probes,
           sum(coalesce((live ->> 'written')::bigint, 0))::bigint AS live_written,
           sum(coalesce((live ->> 'current')::bigint, 0))::bigint AS live_current,
           sum(coalesce((live ->> 'fallback')::bigint, 0))::bigint AS live_fallback,
           sum(latency_sum_ms) AS latency_sum_ms,
           max(latency_max_ms) AS latency_max_ms
      FROM s
     GROUP BY hour
),
unknown_causes AS (
    SELECT hour, jsonb_object_agg(cause, n ORDER BY cause) AS causes
      FROM (SELECT s.hour, c.key AS cause, sum(c.value::bigint) AS n
              FROM s CROSS JOIN LATERAL jsonb_each_text(s.unknown_causes) AS c
             GROUP BY s.hour, c.key) x
     GROUP BY hour
),
rejected_causes AS (
    SELECT hour, jsonb_object_agg(cause, n ORDER BY cause) AS causes, sum(n)::bigint AS total
      FROM (SELECT s.hour, c.key AS cause, sum(c.value::bigint) AS n
              FROM s CROSS JOIN LATERAL jsonb_each_text(s.rejected) AS c
             GROUP BY s.hour, c.key) x
     GROUP BY hour
),
fallback_causes AS (
    SELECT hour, jsonb_object_agg(cause, n ORDER BY cause) AS causes
      FROM (SELECT s.hour, c.key AS cause, sum(c.value::bigint) AS n
              FROM s CROSS JOIN LATERAL jsonb_each_text(coalesce(s.live -> 'fallback_causes', '{}'::jsonb)) AS c
             GROUP BY s.hour, c.key) x
     GROUP BY hour
),
bounds AS (
    SELECT DISTINCT ON (hour) hour, latency_bounds_ms AS bounds
      FROM s
     ORDER BY hour, period_end DESC
),
buckets AS (
    SELECT s.hour, b.i, sum(b.n)::bigint AS n
      FROM s
      JOIN bounds bo ON bo.hour = s.hour AND bo.bounds = s.latency_bounds_ms
     CROSS JOIN LATERAL unnest(s.latency_buckets) WITH ORDINALITY AS b(n, i)
     GROUP BY s.hour, b.i
),
cumulative AS (
    SELECT hour, i, sum(n) OVER (PARTITION BY hour ORDER BY i) AS cum, sum(n) OVER (PARTITION BY hour) AS total
      FROM buckets
),
percentiles AS (
    SELECT hour,
           min(i) FILTER (WHERE cum >= 0.50 * total) AS i50,
           min(i) FILTER (WHERE cum >= 0.95 * total) AS i95,
           min(i) FILTER (WHERE cum >= 0.99 * total) AS i99
      FROM cumulative
     WHERE total > 0
     GROUP BY hour
)
SELECT t.hour,
       t.workers,
       t.first_period_start,
       t.last_period_end,
       t.requests,
       t.available,
       t.unavailable,
       t.unknown,
       t.probes,
       coalesce(r.total, 0) AS rejected,
       CASE WHEN t.requests > 0 THEN round(t.unknown::numeric / t.requests, 4) END AS unknown_share,
       coalesce(u.causes, '{}'::jsonb) AS unknown_causes,
       coalesce(r.causes, '{}'::jsonb) AS rejected_causes,
       t.live_written,
       t.live_current,
       t.live_fallback,
       coalesce(f.causes, '{}'::jsonb) AS live_fallback_causes,
       CASE WHEN t.requests > 0 THEN round((t.latency_sum_ms / t.requests)::numeric, 2) END AS latency_mean_ms,
       bo.bounds[p.i50] AS latency_p50_le_ms,
       bo.bounds[p.i95] AS latency_p95_le_ms,
       bo.bounds[p.i99] AS latency_p99_le_ms,
       t.latency_max_ms
  FROM totals t
  LEFT JOIN unknown_causes u ON u.hour = t.hour
  LEFT JOIN rejected_causes r ON r.hour = t.hour
  LEFT JOIN fallback_causes f ON f.hour = t.hour
  LEFT JOIN bounds bo ON bo.hour = t.hour
  LEFT JOIN percentiles p ON p.hour = t.hour
 ORDER BY t.hour DESC
