-- Raw rows with their quantities (fields) as received and, when every one of them is plain (1 to 18
-- decimal digits, nothing else: text PostgreSQL's bigint cast and pandas read as the same integer),
-- cast: <field>_num (validate.py). OFFSET 0 keeps each expression evaluated once per row.
SELECT row_no, plain, {fields}, {casts}
  FROM (SELECT row_no, {fields}, ({lengths} AND btrim({concatenated}, '0123456789') = '') IS TRUE AS plain
          FROM {raw}
        OFFSET 0) r
OFFSET 0
