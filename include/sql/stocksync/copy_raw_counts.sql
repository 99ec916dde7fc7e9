-- columns: page, the WMS contract's fields, missing_keys, extra_keys (include/stocksync/domain/contract.py)
COPY {raw} ({columns}) FROM STDIN
