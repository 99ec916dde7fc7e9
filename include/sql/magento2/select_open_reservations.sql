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
-- `{sku_filter}` is empty (every SKU) or restricts to the bound `skus` or to the planned SKUs.
SELECT per_order.sku,
       SUM(per_order.open_units) AS open_units,
       SUM(IF(%(include_orders)s AND (ack.increment_id IS NULL OR ack.acknowledged_at > %(watermark)s),
              per_order.open_units, 0)) AS unsent_units
FROM (
  SELECT r.sku, JSON_VALUE(r.metadata, '$.object_increment_id') AS increment_id, -SUM(r.quantity) AS open_units
  FROM {p}inventory_reservation AS r
  WHERE r.stock_id IN (SELECT l.stock_id FROM {p}inventory_source_stock_link AS l WHERE l.source_code = %(source_code)s)
    {sku_filter}
  GROUP BY r.sku, increment_id
  HAVING open_units > 0 AND MIN(r.reservation_id) <= %(upto_reservation_id)s
) AS per_order
LEFT JOIN {p}stocksync_order_ack AS ack ON ack.increment_id = per_order.increment_id
GROUP BY per_order.sku
