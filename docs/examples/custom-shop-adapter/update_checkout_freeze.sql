-- Lift the holds one run set, nobody else's.
UPDATE {shop}.checkout_hold
   SET lifted_at = clock_timestamp()
 WHERE held_by = %(set_by)s AND lifted_at IS NULL
RETURNING id AS freeze_id
