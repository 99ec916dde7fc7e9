-- SKUs per outcome of a plan (a dry run reads as a plan: what each SKU would get).
SELECT outcome, count(*) AS skus FROM {plan} GROUP BY outcome ORDER BY count(*) DESC, outcome
