-- The outcomes the apply audits: a SKU it writes (value or WMS sequence moves), one it
-- cannot apply as computed (changed, clamped, stale, unknown), one held below the WMS's figure by
-- in-window demand. What it leaves out is `unchanged` with no demand and nothing written.
SELECT o.*
  FROM ({outcomes}) o
 WHERE o.outcome <> 'unchanged'
    OR o.adjustment <> 0
    OR o.new_qty IS DISTINCT FROM o.old_qty
    OR o.wms_seq > o.old_seq
