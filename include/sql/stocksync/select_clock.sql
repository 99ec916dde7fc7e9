-- The database's clock: the one freezes (set_at, expires_at) and heartbeats are written with.
SELECT clock_timestamp()
