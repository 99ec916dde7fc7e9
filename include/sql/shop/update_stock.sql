-- The one set-based write: rows whose value or WMS sequence moves, guarded by seq.
UPDATE shop.stock st
   SET qty = w.new_qty, wms_seq = greatest(st.wms_seq, w.wms_seq), updated_at = now()
  FROM {writes} w
 WHERE st.sku = w.sku
   AND w.wms_seq >= st.wms_seq
   AND (st.qty <> w.new_qty OR st.wms_seq < w.wms_seq)
RETURNING st.sku
