-- ...then their stock as the shop has it under the lock (a SKU without a stock row gets none).
INSERT INTO {stock} (sku, qty, wms_seq)
SELECT sku, qty, wms_seq FROM unnest(%(skus)s::text[], %(qtys)s::integer[], %(seqs)s::bigint[]) AS r(sku, qty, wms_seq)
