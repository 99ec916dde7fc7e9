-- The WMS sequence of each SKU written (never lowered).
INSERT INTO {p}stocksync_sku_state (scope, sku, wms_seq)
SELECT %(scope)s, p.sku, p.wms_seq FROM stocksync_plan AS p WHERE p.write_it
ON DUPLICATE KEY UPDATE wms_seq = GREATEST({p}stocksync_sku_state.wms_seq, VALUES(wms_seq))
