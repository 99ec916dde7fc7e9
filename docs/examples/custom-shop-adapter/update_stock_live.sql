-- One item's live figure, only when the WMS sequence is strictly newer than the one applied.
WITH guarded AS (
    SELECT i.code
      FROM {shop}.inventory i
      LEFT JOIN {shop}.stocksync_seq s ON s.code = i.code
     WHERE i.code = %(sku)s AND coalesce(s.wms_seq, 0) < %(wms_seq)s::bigint
), stock AS (
    UPDATE {shop}.inventory i SET on_hand = %(new_qty)s::integer
      FROM guarded g
     WHERE i.code = g.code
    RETURNING floor(i.on_hand)::integer AS qty
), seq AS (
    INSERT INTO {shop}.stocksync_seq AS s (code, wms_seq)
    SELECT code, %(wms_seq)s::bigint FROM guarded
    ON CONFLICT (code) DO UPDATE SET wms_seq = EXCLUDED.wms_seq
)
SELECT qty, %(wms_seq)s::bigint AS wms_seq FROM stock
