-- Checkout locks inventory rows before it takes units: EXCLUSIVE holds new checkouts back and
-- waits for those in flight, reads go on.
LOCK TABLE {shop}.inventory IN EXCLUSIVE MODE
