-- Plain rows that break a quantity check, in row order: their numbers and one flag per check (validate.py).
SELECT row_no, {values}, {flags}
  FROM ({plain_rows}) q
 WHERE plain AND ({any})
 ORDER BY row_no
