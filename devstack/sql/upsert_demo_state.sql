INSERT INTO stocksync.demo_state (id, wms_instance, skus, seed) VALUES (1, %(wms_instance)s, %(skus)s, %(seed)s)
ON CONFLICT (id) DO UPDATE SET wms_instance = excluded.wms_instance, skus = excluded.skus, seed = excluded.seed,
                               seeded_at = now()
