-- This shop's checkout refuses while an unlifted hold has not run out.
WITH expiry AS (SELECT clock_timestamp() + make_interval(secs => %(ttl_seconds)s) AS until)
INSERT INTO {shop}.checkout_hold (why, notice, held_by, until)
SELECT %(reason)s,
       replace(%(message)s, %(placeholder)s,
               to_char(date_trunc('minute', expiry.until + interval '59 seconds') AT TIME ZONE 'UTC',
                       'HH24:MI "UTC"')),
       %(set_by)s, expiry.until
  FROM expiry
RETURNING id AS freeze_id, held_at AS set_at, until AS expires_at, notice AS shopper_message
