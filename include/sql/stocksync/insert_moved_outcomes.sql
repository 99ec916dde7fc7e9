-- The audited outcomes (select_audited_outcomes, from the locked stock and demand) of the SKUs whose
-- demand moved while the apply waited for the lock.
INSERT INTO {moved}
SELECT m.* FROM ({audited}) m WHERE m.sku = ANY (%(skus)s)
