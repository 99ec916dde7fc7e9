-- Taken inside the apply transaction before the order adjustment is recomputed.
-- EXCLUSIVE waits for in-flight checkouts (their row locks) and holds new ones back
-- until commit; plain reads (the browsable site) go on. One table lock instead of a
-- million row locks (docs/architecture.md); a checkout that already holds row locks can
-- still finish, so there is no deadlock with place_order().
LOCK TABLE {shop}.stock IN EXCLUSIVE MODE
