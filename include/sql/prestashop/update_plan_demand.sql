-- The planned figures against the orders as they are now, their rows locked: stocksync computed
-- `new` with the units of the demand read (stocksync_demand); an order placed since took its units
-- off `quantity` already, so it is taken off `new` too, as if it came after the write (a shipped or
-- cancelled one gives its units back). Nothing moves when the orders did not.
UPDATE stocksync_plan AS p
LEFT JOIN stocksync_demand AS then_ ON then_.sku = p.sku
LEFT JOIN stocksync_demand_now AS now_ ON now_.sku = p.sku
SET p.new_qty = GREATEST(0, p.new_qty + COALESCE(then_.units, 0) - COALESCE(now_.units, 0))
WHERE COALESCE(then_.units, 0) <> COALESCE(now_.units, 0)
