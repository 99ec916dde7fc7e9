-- Release the freezes one run set (never anybody else's) and report how long each held.
UPDATE {shop}.checkout_freezes
   SET released_at = clock_timestamp()
 WHERE set_by = %(set_by)s AND released_at IS NULL
RETURNING freeze_id
