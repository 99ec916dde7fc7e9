SELECT outcome, count(*) AS skus, coalesce(sum(new_qty - old_qty), 0) AS delta_units
  FROM {plan}
 GROUP BY outcome
