-- The freeze just set (its id from LAST_INSERT_ID() of the same connection).
SELECT freeze_id, set_at, expires_at, shopper_message
FROM {p}stocksync_checkout_freeze
WHERE freeze_id = %(freeze_id)s
