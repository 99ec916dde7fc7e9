-- Seconds a run's holds kept checkout closed.
SELECT coalesce(sum(extract(epoch FROM least(coalesce(lifted_at, clock_timestamp()), until) - held_at)), 0)::float8
           AS freeze_seconds,
       count(*) AS freezes
  FROM {shop}.checkout_hold
 WHERE held_by = %(set_by)s
