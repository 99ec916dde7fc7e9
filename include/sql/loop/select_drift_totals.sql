-- The drift a full sync is about to correct, from its audit rows (final: recomputed under the stock
-- lock), read inside the apply transaction before the write: SKUs whose shop figure differs from
-- the truth (max(0, WMS available - uncounted orders)), units over-stated (shop above the truth:
-- oversell risk) and under-stated (below: lost sales). Per SKU: the view stocksync.sku_drift.
-- %(checked)s: the SKUs the apply compared (its counts; the audit (migration 0007) leaves unchanged SKUs with no
-- demand out), NULL: counted from the audit rows (a run that audited every SKU).
-- The night is the date the run started in the shop's time zone (%(zone)s, shop_timezone): one date per
-- local night, across daylight-saving changes (in UTC, a nightly at 00:30 summer time fell on the day before).
SELECT coalesce(%(checked)s::int,
                count(*) FILTER (WHERE outcome IN ('changed', 'clamped', 'unchanged'))) AS skus_checked,
       count(*) FILTER (WHERE outcome IN ('changed', 'clamped') AND new_qty IS DISTINCT FROM old_qty) AS skus_off,
       coalesce(sum(greatest(old_qty - new_qty, 0)) FILTER (WHERE outcome IN ('changed', 'clamped')), 0)::bigint
           AS units_over,
       coalesce(sum(greatest(new_qty - old_qty, 0)) FILTER (WHERE outcome IN ('changed', 'clamped')), 0)::bigint
           AS units_under,
       (SELECT (r.started_at AT TIME ZONE %(zone)s)::date FROM stocksync.sync_runs r WHERE r.run_id = %(run_id)s) AS night
  FROM stocksync.sku_audit
 WHERE run_id = %(run_id)s
