-- Release the freezes one holder set (never anybody else's).
UPDATE {p}stocksync_checkout_freeze
SET released_at = UTC_TIMESTAMP(6)
WHERE set_by = %(set_by)s AND released_at IS NULL
