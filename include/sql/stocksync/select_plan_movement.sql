-- What a plan would change (a dry run, or a run stopped before its apply): SKUs whose stock would
-- move, units up and down, SKUs that would go from in stock to 0.
SELECT count(*) FILTER (WHERE new_qty IS DISTINCT FROM old_qty) AS skus_changed,
       coalesce(sum(greatest(new_qty - coalesce(old_qty, 0), 0)), 0)::bigint AS units_up,
       coalesce(sum(greatest(coalesce(old_qty, 0) - new_qty, 0)), 0)::bigint AS units_down,
       count(*) FILTER (WHERE old_qty > 0 AND new_qty = 0) AS zeroed
  FROM {plan}
 WHERE outcome IN ('changed', 'clamped')
