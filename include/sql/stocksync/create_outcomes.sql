-- Transaction-local outcomes of the planned SKUs the apply audits (audit rows, writes and counts
-- come from it): every SKU but those left as they are with no in-window demand, whose outcome
-- (unchanged, old = new = WMS available, sequence already applied) the run's plan and the audit
-- give (stocksync.sku_outcomes()); the run record counts them.
CREATE TEMP TABLE {outcomes_table} ON COMMIT DROP AS
{audited}
