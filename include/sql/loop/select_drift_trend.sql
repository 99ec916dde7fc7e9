-- The trend a night's drift is judged against: the median SKUs off over the same DAG's nights in
-- the window before it, and how many nights that is (the latest run of each night).
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY skus_off) AS median_skus_off, count(*) AS nights
  FROM (SELECT DISTINCT ON (night) night, skus_off
          FROM stocksync.drift_history
         WHERE dag_id = %(dag_id)s AND night < %(night)s AND night >= %(night)s - %(nights)s::int
           AND run_id <> %(run_id)s
         ORDER BY night, recorded_at DESC) nights
