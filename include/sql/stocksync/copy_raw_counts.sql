COPY {raw} (page, sku, on_hand, non_usable, allocated, available, seq, missing_keys, extra_keys) FROM STDIN
