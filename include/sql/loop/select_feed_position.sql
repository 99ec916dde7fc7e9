-- The last WMS sequence the shop's stock is known to reflect, where the change feed goes on from:
-- the furthest of (a) the newest sequence an applied intraday run read through and (b) the newest
-- sequence in the snapshot of the latest applied full-catalog sync (nightly, or a push of the
-- whole catalog: a SKU-list push says nothing about the other SKUs). NULL: no applied full sync yet.
-- (b) is on the run record since migration 0007 (apply_details.snapshot_max_seq: the audit no longer holds
-- every SKU); a run applied before that has it from its audit, which then held every SKU.
SELECT greatest(
         (SELECT max(f.through_seq)
            FROM stocksync.feed_runs f
            JOIN stocksync.sync_runs r ON r.run_id = f.run_id
           WHERE r.status IN ('applied', 'duplicate') AND f.gap IS NULL),
         (SELECT coalesce((r.apply_details ->> 'snapshot_max_seq')::bigint,
                          (SELECT max(a.wms_seq) FROM stocksync.sku_audit a WHERE a.run_id = r.run_id))
            FROM stocksync.sync_runs r
           WHERE r.dag_id = ANY (%(full_sync_dag_ids)s)
             AND r.status = 'applied'
             AND coalesce(jsonb_array_length(r.options -> 'skus'), 0) = 0
           ORDER BY r.started_at DESC
           LIMIT 1)
       ) AS position
