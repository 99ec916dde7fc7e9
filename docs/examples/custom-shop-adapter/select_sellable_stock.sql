-- One row per item: on sale or not, units on hand (NULL: no inventory row), sequence applied.
SELECT it.code AS sku, it.active AS enabled, floor(inv.on_hand)::integer AS qty,
       CASE WHEN inv.code IS NOT NULL THEN coalesce(s.wms_seq, 0) END AS wms_seq
  FROM {shop}.item it
  LEFT JOIN {shop}.inventory inv ON inv.code = it.code
  LEFT JOIN {shop}.stocksync_seq s ON s.code = it.code
