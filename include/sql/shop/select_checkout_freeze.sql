-- Seconds checkout was closed by a run's freezes (an unreleased one counts until now,
-- an expired one until it expired).
SELECT coalesce(sum(extract(epoch FROM least(coalesce(released_at, clock_timestamp()), expires_at) - set_at)), 0)::float8 AS freeze_seconds,
       count(*) AS freezes
  FROM {shop}.checkout_freezes
 WHERE set_by = %(set_by)s
