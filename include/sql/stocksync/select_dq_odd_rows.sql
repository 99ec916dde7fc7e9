-- Rows whose quantities are not all plain, as received, in row order: pandas judges them (validate.py).
SELECT row_no, {fields} FROM ({plain_rows}) q WHERE NOT plain ORDER BY row_no
