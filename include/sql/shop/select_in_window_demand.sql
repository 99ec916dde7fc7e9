-- Units the WMS had not counted when it took its snapshot (docs/architecture.md), per SKU:
--  * unsent orders: status in the unsent statuses, younger than the unsent-order cutoff, and
--    not acknowledged by the WMS before the watermark (the WMS's orders_counted_until, or the
--    time the snapshot request started when the WMS gives none);
--  * active carts: carts updated within the active-cart cutoff (only when switched on).
SELECT sku, sum(unsent_qty)::bigint AS unsent_qty, sum(cart_qty)::bigint AS cart_qty
  FROM (
        SELECT l.sku, l.qty AS unsent_qty, 0 AS cart_qty
          FROM {shop}.orders o
          JOIN {shop}.order_lines l ON l.order_id = o.order_id
         WHERE %(include_orders)s
           AND o.created_at >= now() - make_interval(secs => %(unsent_cutoff_seconds)s)
           AND o.status = ANY (%(unsent_statuses)s)
           -- the watermark is the WMS's orders_counted_until, or (no WMS watermark) the time the
           -- snapshot request started: either way an order the WMS never acknowledged is uncounted,
           -- whenever it was placed (watermark_source only says which one it is)
           AND (o.wms_acknowledged_at IS NULL OR o.wms_acknowledged_at > %(watermark)s)
        UNION ALL
        SELECT cl.sku, 0, cl.qty
          FROM {shop}.carts c
          JOIN {shop}.cart_lines cl ON cl.cart_id = c.cart_id
         WHERE %(include_carts)s
           AND c.updated_at >= now() - make_interval(secs => %(cart_cutoff_seconds)s)
       ) demand
 GROUP BY sku
