-- Transaction-local outcomes of the SKUs whose demand moved while the apply waited for the lock.
CREATE TEMP TABLE {moved} (LIKE {outcomes_table}) ON COMMIT DROP
