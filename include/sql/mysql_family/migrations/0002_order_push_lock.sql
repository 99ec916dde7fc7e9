-- The order-push lock (shared by both platforms): one row. A batch of the order push holds it in share mode from before it
-- sends orders to the WMS until their acknowledgements commit; the apply takes it exclusively
-- first, so it never counts an order the WMS already has as not counted (checkout never takes it).
CREATE TABLE IF NOT EXISTS {p}stocksync_push_lock (
  id tinyint unsigned NOT NULL PRIMARY KEY
) ENGINE=InnoDB;
INSERT IGNORE INTO {p}stocksync_push_lock (id) VALUES (1);
