INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, expires_at)
VALUES (%(reason)s, %(shopper_message)s, %(set_by)s, clock_timestamp() + make_interval(secs => %(ttl_seconds)s))
RETURNING freeze_id, set_at, expires_at
