-- Validated raw rows, typed.
SELECT sku, available::bigint AS wms_available, seq::bigint AS wms_seq FROM {raw}
