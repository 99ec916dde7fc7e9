-- Active (unreleased, unexpired) freezes, all of them or only one holder's, oldest first.
SELECT freeze_id, reason, shopper_message, set_by, set_at, expires_at
FROM {p}stocksync_checkout_freeze
WHERE released_at IS NULL AND expires_at > UTC_TIMESTAMP(6)
  AND (%(set_by)s IS NULL OR set_by = %(set_by)s)
ORDER BY set_at, freeze_id
