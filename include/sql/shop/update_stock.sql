-- The one set-based write: rows whose value or WMS sequence moves, guarded by seq; a catalog
-- product without a stock row gets one (stocksync/select_sku_outcomes.sql counts it as 0, seq -1).
INSERT INTO {shop}.stock AS st (sku, qty, wms_seq, updated_at)
SELECT w.sku, w.new_qty, w.wms_seq, now()
  FROM {writes} w
ON CONFLICT (sku) DO UPDATE
   SET qty = EXCLUDED.qty, wms_seq = greatest(st.wms_seq, EXCLUDED.wms_seq), updated_at = EXCLUDED.updated_at
 WHERE EXCLUDED.wms_seq >= st.wms_seq
   AND (st.qty <> EXCLUDED.qty OR st.wms_seq < EXCLUDED.wms_seq)
RETURNING st.sku
