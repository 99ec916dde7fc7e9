-- Whether checkout is frozen right now, for the web server's checkout gate (GET /checkout-freeze of
-- the availability service, deploy/nginx/). Exactly one row: the shopper message of the oldest
-- active freeze (NULL while checkout is open) and the seconds until the last active freeze expires
-- (checkout reopens by then at the latest; 0 while open).
-- Placeholder: freeze (shop/select_active_freeze.sql, run with set_by NULL: every holder's freezes).
SELECT (array_agg(f.shopper_message ORDER BY f.set_at, f.freeze_id))[1] AS shopper_message,
       coalesce(extract(epoch FROM max(f.expires_at) - clock_timestamp()), 0)::float8 AS seconds_left
  FROM ({freeze}) AS f
