-- Bound every later statement of this session (a full-mode step: what is left of the run's budget).
SELECT set_config('statement_timeout', %(timeout)s, false)
