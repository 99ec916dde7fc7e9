SELECT wms_instance, skus, seed FROM stocksync.demo_state WHERE id = 1
