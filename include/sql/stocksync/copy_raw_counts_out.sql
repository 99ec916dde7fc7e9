-- columns: page, the WMS contract's fields, missing_keys, extra_keys (include/stocksync/domain/contract.py)
COPY (SELECT row_no, {columns} FROM {raw})
TO STDOUT WITH (FORMAT csv, HEADER, NULL '\N')
