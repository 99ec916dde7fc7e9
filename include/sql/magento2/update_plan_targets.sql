-- For each planned SKU, its items locked: the source quantity to write. The sellable figure `new`
-- was computed by stocksync with the units of uncounted orders of the demand read
-- (stocksync_reserved: `unsent_units`); Magento will subtract again, through its reservations, the
-- orders it holds. Read again now under the row lock (stocksync_reserved_now), the quantity is
--   new + unsent units then + (units held now - unsent units now)
-- i.e. `new` plus the orders the WMS already counted, as held now: equal to `new` + the units held
-- when nothing moved since the demand read; an order placed since is taken off by Magento once, and
-- a counted order shipped since is no longer added back (its shipment already deducted it).
UPDATE stocksync_plan AS p
LEFT JOIN stocksync_reserved AS r ON r.sku = p.sku
LEFT JOIN stocksync_reserved_now AS now ON now.sku = p.sku
SET p.target_qty = p.new_qty + COALESCE(r.unsent_units, 0) + COALESCE(now.open_units - now.unsent_units, 0)
