-- Whether a staging table (a run's plan) still exists: staging tables are dropped after the retention.
SELECT to_regclass(%(name)s) IS NOT NULL AS present
