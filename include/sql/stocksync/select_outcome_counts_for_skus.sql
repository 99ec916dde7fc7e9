-- Audited outcomes of the given SKUs in the apply's transaction-local outcomes.
SELECT outcome, count(*) FROM {outcomes_table} WHERE sku = ANY (%(skus)s) GROUP BY outcome
