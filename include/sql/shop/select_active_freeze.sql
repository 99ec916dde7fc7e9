-- Active (unreleased, unexpired) freezes, optionally only those one run set.
SELECT freeze_id, reason, shopper_message, set_by, set_at, expires_at
  FROM {shop}.checkout_freezes
 WHERE released_at IS NULL AND expires_at > clock_timestamp()
   AND (%(set_by)s::text IS NULL OR set_by = %(set_by)s::text)
 ORDER BY set_at
