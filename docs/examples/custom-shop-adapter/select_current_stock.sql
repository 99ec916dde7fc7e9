-- Units on hand (numeric in this shop: whole units only) and the last WMS sequence applied, which
-- this shop does not store: the adapter keeps it in its own side table, stocksync_seq.
SELECT i.code AS sku, floor(i.on_hand)::integer AS qty, coalesce(s.wms_seq, 0) AS wms_seq
  FROM {shop}.inventory i
  LEFT JOIN {shop}.stocksync_seq s ON s.code = i.code
