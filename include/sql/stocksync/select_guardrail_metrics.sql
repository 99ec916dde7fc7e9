-- Plan-wide figures the guardrails judge (docs/architecture.md).
SELECT (SELECT count(*) FROM ({enabled_skus}) e) AS enabled_catalog,
       (SELECT count(*) FROM ({enabled_skus}) e JOIN {plan} p ON p.sku = e.sku) AS covered,
       count(*) FILTER (WHERE outcome NOT IN ('unknown', 'stale')) AS applicable,
       count(*) FILTER (WHERE outcome IN ('changed', 'clamped') AND new_qty IS DISTINCT FROM old_qty) AS changing,
       count(*) FILTER (WHERE outcome NOT IN ('unknown', 'stale') AND old_qty > 0 AND new_qty = 0) AS zeroed,
       coalesce(sum(old_qty) FILTER (WHERE outcome NOT IN ('unknown', 'stale')), 0) AS units_before,
       coalesce(sum(new_qty) FILTER (WHERE outcome NOT IN ('unknown', 'stale')), 0) AS units_after,
       -- SKUs the shop knows whose WMS seq is older than the one last applied
       count(*) FILTER (WHERE outcome = 'stale') AS stale,
       count(*) FILTER (WHERE outcome <> 'unknown') AS known
  FROM {plan}
