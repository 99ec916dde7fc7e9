-- Close checkout until released or until the TTL passes (%(ttl_microseconds)s). The shopper
-- message's expected end is filled in from the same expiry the gate honours, rounded up to the
-- minute, UTC (DATE_FORMAT drops the seconds of the expiry plus 59.999999 s), so it never promises
-- an earlier end than the flag's. The session's time zone is UTC.
INSERT INTO {p}stocksync_checkout_freeze (reason, shopper_message, set_by, set_at, expires_at)
SELECT %(reason)s,
       REPLACE(%(message)s, %(placeholder)s,
               DATE_FORMAT(t.now_ + INTERVAL %(ttl_microseconds)s MICROSECOND + INTERVAL 59999999 MICROSECOND,
                           '%%H:%%i UTC')),
       %(set_by)s, t.now_, t.now_ + INTERVAL %(ttl_microseconds)s MICROSECOND
FROM (SELECT UTC_TIMESTAMP(6) AS now_) AS t
