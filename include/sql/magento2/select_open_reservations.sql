-- Per SKU: the units still reserved by every order of the stocks the WMS's source belongs to
-- (`open_units`, what Magento will subtract again until the order ships or is cancelled) and, of
-- those, the units of orders the WMS had not counted at %(watermark)s (`unsent_units`). An order is
-- named by its reservation metadata's `object_increment_id` (a new order's `object_id` is still
-- empty); an order's rows that sum to zero or more hold nothing. One statement: both figures come
-- from one read. Composed into an INSERT ... SELECT or read on its own. Only orders whose first
-- reservation is at or before %(upto_reservation_id)s count (the log's last id when the apply or the
-- live write-back began): an order placed since (MSI's checkout takes no lock) is subtracted by
-- Magento from the written figure, never added back to it; a later shipment or cancellation of an
-- older order (its compensating row) still counts.
-- An order counts as counted by the WMS when it was acknowledged at or before the watermark under
-- every store view that has an order with its increment id: the reservation names no store view, so
-- an increment id that two store views share counts only once both orders are acknowledged (until
-- then its units stay off: never added back for an order the WMS may not have).
-- A reservation names its SKU as it was spelled when the order was placed; Magento matches it to
-- the product under the table's collation (letter case and trailing spaces do not count): each is
-- reported under the WMS source item's spelling, the one stocksync's staging matches exactly, so no
-- order of a SKU is missed for a reservation spelled otherwise.
-- `{sku_filter}` is empty (every SKU) or restricts to the bound `skus` or to the planned SKUs.
SELECT per_order.sku,
       SUM(per_order.open_units) AS open_units,
       SUM(IF(%(include_orders)s AND NOT per_order.counted, per_order.open_units, 0)) AS unsent_units
FROM (
  SELECT by_order.sku, by_order.open_units,
         COALESCE((SELECT MAX(ack.acknowledged_at) <= %(watermark)s
                   FROM {p}stocksync_order_ack_by_store AS ack WHERE ack.increment_id = by_order.increment_id), 0)
         AND NOT EXISTS (SELECT 1 FROM {p}sales_order AS o
                         LEFT JOIN {p}stocksync_order_ack_by_store AS mine
                           ON mine.store_id = COALESCE(o.store_id, 0) AND mine.increment_id = o.increment_id
                         WHERE o.increment_id = by_order.increment_id AND mine.increment_id IS NULL) AS counted
  FROM (
    SELECT COALESCE(si.sku, r.sku) AS sku, JSON_VALUE(r.metadata, '$.object_increment_id') AS increment_id,
           -SUM(r.quantity) AS open_units
    FROM {p}inventory_reservation AS r
    LEFT JOIN {p}inventory_source_item AS si ON si.source_code = %(source_code)s AND si.sku = r.sku
    WHERE r.stock_id IN (SELECT l.stock_id FROM {p}inventory_source_stock_link AS l
                         WHERE l.source_code = %(source_code)s)
      {sku_filter}
    GROUP BY COALESCE(si.sku, r.sku), increment_id
    HAVING open_units > 0 AND MIN(r.reservation_id) <= %(upto_reservation_id)s
  ) AS by_order
) AS per_order
GROUP BY per_order.sku
