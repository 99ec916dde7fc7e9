SELECT count(*) FILTER (WHERE enabled) AS enabled, count(*) AS total FROM shop.products
