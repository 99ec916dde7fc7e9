-- Conflicts with lock_stock (EXCLUSIVE), not with checkout or readers.
LOCK TABLE {shop}.inventory IN ROW SHARE MODE
