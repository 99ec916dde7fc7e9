-- Holds closing checkout now, all or one holder's, oldest first.
SELECT id AS freeze_id, why AS reason, notice AS shopper_message, held_by AS set_by, held_at AS set_at,
       until AS expires_at
  FROM {shop}.checkout_hold
 WHERE lifted_at IS NULL AND until > clock_timestamp()
   AND (%(set_by)s::text IS NULL OR held_by = %(set_by)s::text)
 ORDER BY held_at
