-- Distribution of the changes a plan would make (new - old), in signed power-of-ten buckets
-- (the same buckets as stocksync/select_change_histogram.sql for an applied run).
SELECT CASE WHEN d = 0 THEN 0 ELSE sign(d)::int * (floor(log(10, abs(d)::numeric))::int + 1) END AS bucket,
       count(*) AS skus
  FROM (SELECT coalesce(new_qty, 0) - coalesce(old_qty, 0) AS d
          FROM {plan} WHERE outcome IN ('changed', 'clamped')) changes
 GROUP BY 1 ORDER BY 1
