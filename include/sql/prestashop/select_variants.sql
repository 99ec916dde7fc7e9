-- The storefront's variants: each combination of a product that has a reference, with its
-- attribute groups' public names and its attribute values in the language %(id_lang)s. One row per
-- (product reference, combination reference, attribute). Reads only.
SELECT prod.reference AS code, grp.public_name AS option_name, val.name AS option_value, pa.reference AS sku
FROM {p}product_attribute AS pa
JOIN {p}product AS prod ON prod.id_product = pa.id_product
JOIN {p}product_attribute_combination AS pac ON pac.id_product_attribute = pa.id_product_attribute
JOIN {p}attribute AS a ON a.id_attribute = pac.id_attribute
JOIN {p}attribute_lang AS val ON val.id_attribute = a.id_attribute AND val.id_lang = %(id_lang)s
JOIN {p}attribute_group_lang AS grp ON grp.id_attribute_group = a.id_attribute_group AND grp.id_lang = %(id_lang)s
WHERE pa.reference <> '' AND prod.reference <> ''
ORDER BY prod.reference, pa.reference, grp.public_name
