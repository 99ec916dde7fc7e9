-- select_dq_plain_rows for a table whose quantities all cast to bigint (an error otherwise: validate.py
-- then uses select_dq_plain_rows): a quantity is plain when it is the canonical text of its value
-- (>= 0, as many bytes as the value has digits, no leading zero), which is cheaper to test than its
-- characters. OFFSET 0 keeps each expression evaluated once per row.
SELECT row_no, plain, {fields}, {casts}
  FROM (SELECT row_no, {fields}, ({canonical}) IS TRUE AS plain, {integers}
          FROM (SELECT row_no, {fields}, {bigints} FROM {raw} OFFSET 0) r
        OFFSET 0) r
OFFSET 0
