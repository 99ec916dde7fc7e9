-- SKUs that more than one row carries (validate.py).
SELECT sku FROM {raw} WHERE sku IS NOT NULL GROUP BY sku HAVING count(*) > 1
