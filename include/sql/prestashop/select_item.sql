-- The product and combination a SKU names among one half of the items (items.sql puts the two
-- halves together), and whether its product is active.
SELECT items.id_product, items.id_product_attribute, items.enabled FROM ({items}) AS items WHERE items.sku = %(sku)s
