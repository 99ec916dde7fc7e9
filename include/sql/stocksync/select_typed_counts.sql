-- Validated raw rows, typed (quarantined rows are left out before the casts run).
SELECT sku, available::bigint AS wms_available, seq::bigint AS wms_seq FROM {raw} WHERE NOT quarantined
