COPY (SELECT row_no, page, sku, on_hand, non_usable, allocated, available, seq, missing_keys, extra_keys FROM {raw})
TO STDOUT WITH (FORMAT csv, HEADER, NULL '\N')
