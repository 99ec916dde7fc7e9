-- Validation's quantity pass (validate.py): rows, plain rows, then the aggregates validate.py composes
-- (non-null count per field, then per quantity check the plain rows that break it).
SELECT count(*) AS rows, count(*) FILTER (WHERE plain) AS plain, {aggregates}
  FROM ({plain_rows}) q
