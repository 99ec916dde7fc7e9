-- Units the WMS had not counted: purchases in an unsent state, young enough, not exported to the
-- WMS by the watermark (this shop records the export time); baskets touched within the cutoff.
SELECT sku, sum(unsent_qty)::bigint AS unsent_qty, sum(cart_qty)::bigint AS cart_qty
  FROM (
        SELECT l.code AS sku, l.units AS unsent_qty, 0 AS cart_qty
          FROM {shop}.purchase p
          JOIN {shop}.purchase_line l ON l.purchase_id = p.id
         WHERE %(include_orders)s
           AND p.placed_at >= now() - make_interval(secs => %(unsent_cutoff_seconds)s)
           AND p.state = ANY (%(unsent_statuses)s)
           AND (p.exported_at IS NULL OR p.exported_at > %(watermark)s)
        UNION ALL
        SELECT bl.code, 0, bl.units
          FROM {shop}.basket b
          JOIN {shop}.basket_line bl ON bl.basket_id = b.id
         WHERE %(include_carts)s
           AND b.touched_at >= now() - make_interval(secs => %(cart_cutoff_seconds)s)
       ) demand
 GROUP BY sku
