-- One SKU's live figure (availability service, live mode), written only when the WMS state it
-- comes from is newer than the one last applied (strictly: the nightly sync also rewrites an equal
-- sequence, a per-request write must not). Runs under shop/lock_stock_row.sql.
UPDATE {shop}.stock
   SET qty = %(new_qty)s, wms_seq = %(wms_seq)s, updated_at = now()
 WHERE sku = %(sku)s AND wms_seq < %(wms_seq)s
RETURNING qty, wms_seq
