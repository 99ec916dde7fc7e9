-- Lock the scope's stock rows against checkout (PrestaShop's order validation updates these rows).
SELECT COUNT(*) FROM {p}stock_available
WHERE id_shop = %(row_shop)s AND id_shop_group = %(row_group)s FOR UPDATE
