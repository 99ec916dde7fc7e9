-- Migration 0007: the apply audits what it changes or cannot apply as computed, not every
-- SKU. A planned SKU with no audit row was left unchanged with no in-window demand, so its outcome is
-- its snapshot's figure: old = new = WMS available, old sequence = WMS sequence, adjustment 0. The run
-- record counts it (`unchanged`); this function gives every SKU's row of a run, the audited ones from
-- stocksync.sku_audit and the others from the run's plan while its staging tables are kept
-- (staging_retention_days). Runs applied before this migration audited every SKU: their rows all come
-- from the audit. p_plan: the plan table, when it is not the run's (tests that stage their own).
CREATE OR REPLACE FUNCTION stocksync.sku_outcomes(p_run_id text, p_plan regclass DEFAULT NULL)
RETURNS TABLE (run_id text, sku text, snapshot_id text, old_qty integer, old_seq bigint, wms_available bigint,
               wms_seq bigint, adjustment bigint, new_qty integer, outcome text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    plan regclass;
    snapshot text;
BEGIN
    RETURN QUERY
        SELECT a.run_id, a.sku, a.snapshot_id, a.old_qty, a.old_seq, a.wms_available, a.wms_seq, a.adjustment,
               a.new_qty, a.outcome
          FROM stocksync.sku_audit a
         WHERE a.run_id = p_run_id;
    SELECT coalesce(p_plan, to_regclass(format('stocksync.%I', 'plan_' || substr(r.staging_table, 5)))),
           r.snapshot_id
      INTO plan, snapshot
      FROM stocksync.sync_runs r
     WHERE r.run_id = p_run_id AND r.status = 'applied' AND (p_plan IS NOT NULL OR r.staging_table LIKE 'raw\_%');
    IF plan IS NOT NULL THEN
        RETURN QUERY EXECUTE format(
            'SELECT $1, p.sku, $2, p.wms_available::integer, p.wms_seq, p.wms_available, p.wms_seq, 0::bigint, '
            '       p.wms_available::integer, ''unchanged''::text '
            '  FROM %s p '
            ' WHERE NOT EXISTS (SELECT 1 FROM stocksync.sku_audit a WHERE a.run_id = $1 AND a.sku = p.sku)', plan)
            USING p_run_id, snapshot;
    END IF;
END
$$;
