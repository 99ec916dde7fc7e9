-- The storefront's variants: each configurable parent's simple children, with the label (admin,
-- store 0) and the chosen value of every attribute the parent is configured by. One row per
-- (parent SKU, child SKU, attribute). Reads only.
SELECT parent.sku AS code, attr.frontend_label AS option_name, option_value.value AS option_value, child.sku
FROM {p}catalog_product_super_link AS link
JOIN {p}catalog_product_entity AS parent ON parent.entity_id = link.parent_id
JOIN {p}catalog_product_entity AS child ON child.entity_id = link.product_id
JOIN {p}catalog_product_super_attribute AS super ON super.product_id = link.parent_id
JOIN {p}eav_attribute AS attr ON attr.attribute_id = super.attribute_id
JOIN {p}catalog_product_entity_int AS chosen ON chosen.entity_id = child.entity_id
  AND chosen.attribute_id = super.attribute_id AND chosen.store_id = 0
JOIN {p}eav_attribute_option_value AS option_value ON option_value.option_id = chosen.value
  AND option_value.store_id = 0
ORDER BY parent.sku, child.sku, attr.frontend_label
