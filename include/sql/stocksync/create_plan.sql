-- The plan: validated WMS counts, typed, with the outcome each SKU would get right now.
-- It serves guardrails and reports; the numbers written are recomputed inside the apply.
DROP TABLE IF EXISTS {plan};
CREATE UNLOGGED TABLE {plan} AS
SELECT o.*
  FROM ({outcomes}) o;
ALTER TABLE {plan} ADD PRIMARY KEY (sku)
