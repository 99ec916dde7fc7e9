-- The planned figures, guarded by the sequence kept in the adapter's side table: a row moves when
-- the stored sequence is not newer and the figure or the sequence changes; an item without an
-- inventory row gets one. Both writes are data-modifying CTEs of one statement.
WITH todo AS (
    SELECT w.sku, w.new_qty, w.wms_seq
      FROM {writes} w
      LEFT JOIN {shop}.inventory i ON i.code = w.sku
      LEFT JOIN {shop}.stocksync_seq s ON s.code = w.sku
     WHERE i.code IS NULL
        OR (w.wms_seq >= coalesce(s.wms_seq, 0)
            AND (i.on_hand <> w.new_qty OR w.wms_seq > coalesce(s.wms_seq, 0)))
), stock AS (
    INSERT INTO {shop}.inventory AS i (code, on_hand)
    SELECT sku, new_qty FROM todo
    ON CONFLICT (code) DO UPDATE SET on_hand = EXCLUDED.on_hand
    RETURNING i.code
), seq AS (
    INSERT INTO {shop}.stocksync_seq AS s (code, wms_seq)
    SELECT sku, wms_seq FROM todo
    ON CONFLICT (code) DO UPDATE SET wms_seq = greatest(s.wms_seq, EXCLUDED.wms_seq)
)
SELECT code AS sku FROM stock
