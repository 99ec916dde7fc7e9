-- The rows the apply writes: only those whose value or WMS sequence moves.
CREATE TEMP TABLE {writes} (sku text PRIMARY KEY, new_qty integer NOT NULL, wms_seq bigint NOT NULL) ON COMMIT DROP
