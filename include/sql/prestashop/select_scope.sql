-- The shop's group and whether the group shares its stock (rows id_shop = 0, id_shop_group = G),
-- and the shops whose orders take from the same rows.
SELECT s.id_shop_group, g.share_stock,
       (SELECT GROUP_CONCAT(o.id_shop) FROM {p}shop AS o WHERE o.id_shop_group = s.id_shop_group) AS group_shops
FROM {p}shop AS s JOIN {p}shop_group AS g ON g.id_shop_group = s.id_shop_group
WHERE s.id_shop = %(id_shop)s
