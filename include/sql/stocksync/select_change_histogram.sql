-- Distribution of stock changes (new - old) of a run, in signed power-of-ten buckets.
SELECT CASE WHEN d = 0 THEN 0 ELSE sign(d)::int * (floor(log(10, abs(d)::numeric))::int + 1) END AS bucket,
       count(*) AS skus
  FROM (SELECT coalesce(new_qty, 0) - coalesce(old_qty, 0) AS d
          FROM stocksync.sku_audit WHERE run_id = %(run_id)s AND outcome IN ('changed', 'clamped')) changes
 GROUP BY 1 ORDER BY 1
