-- One WMS item read live (GET /v1/stock/items/<sku>) as the `counts` relation of
-- stocksync/select_sku_outcomes.sql, so the live figure follows the nightly sync's rules.
SELECT %(sku)s::text AS sku, %(wms_available)s::bigint AS wms_available, %(wms_seq)s::bigint AS wms_seq
