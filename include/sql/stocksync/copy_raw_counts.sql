-- columns: page, the WMS contract's fields, missing_keys, extra_keys (include/stocksync/contract.py)
COPY {raw} ({columns}) FROM STDIN
