-- Seconds checkout was closed by one holder's freezes (an unreleased one counts until now, an
-- expired one until it expired).
SELECT COALESCE(SUM(TIMESTAMPDIFF(MICROSECOND, set_at,
                                  LEAST(COALESCE(released_at, UTC_TIMESTAMP(6)), expires_at))), 0) / 1000000
FROM {p}stocksync_checkout_freeze
WHERE set_by = %(set_by)s
