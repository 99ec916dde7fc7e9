-- Held by the order push from before it sends a batch until the batch's acknowledgements are
-- committed. ROW SHARE does not block checkout (ROW EXCLUSIVE) or readers, but a sync's apply
-- (shop/lock_stock.sql, EXCLUSIVE) waits for it, so an apply never counts an order the WMS has
-- already received as unacknowledged (it would be subtracted twice: once by the WMS, once by us).
LOCK TABLE {shop}.stock IN ROW SHARE MODE
