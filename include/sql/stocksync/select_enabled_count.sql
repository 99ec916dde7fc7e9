-- The enabled catalog's size (validate.py: the row-count band of a snapshot).
SELECT count(*) FILTER (WHERE enabled) FROM ({catalog}) cat
