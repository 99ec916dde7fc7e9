-- The distinct missing_keys / extra_keys of rows that lack a contract field or carry another (validate.py).
SELECT DISTINCT missing_keys, extra_keys FROM {raw} WHERE missing_keys IS NOT NULL OR extra_keys IS NOT NULL
