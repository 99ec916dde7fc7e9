-- Transaction-local outcomes of every planned SKU (audit rows, writes and counts come from it).
CREATE TEMP TABLE {outcomes_table} ON COMMIT DROP AS
SELECT o.* FROM ({outcomes}) o
