SELECT outcome, count(*) FROM {outcomes_table} GROUP BY outcome
