-- Close checkout until released or until the TTL passes. The shopper message's expected end is
-- filled in from the same expiry the shop honours (rounded up to the minute, UTC), so it never
-- promises an earlier end than the flag's.
WITH expiry AS (SELECT clock_timestamp() + make_interval(secs => %(ttl_seconds)s) AS expires_at)
INSERT INTO {shop}.checkout_freezes (reason, shopper_message, set_by, expires_at)
SELECT %(reason)s,
       replace(%(message)s, %(placeholder)s,
               to_char(date_trunc('minute', expiry.expires_at + interval '59.999999 seconds') AT TIME ZONE 'UTC',
                       'HH24:MI "UTC"')),
       %(set_by)s, expiry.expires_at
  FROM expiry
RETURNING freeze_id, set_at, expires_at, shopper_message
