-- Claim a data file for a run (a retried extract keeps its claim). No row back: another run holds it.
INSERT INTO stocksync.file_drops (run_id, dag_id, location, data_file, manifest_file)
VALUES (%(run_id)s, %(dag_id)s, %(location)s, %(data_file)s, %(manifest_file)s)
ON CONFLICT (location, data_file) WHERE status = 'claimed' DO UPDATE
   SET manifest_file = EXCLUDED.manifest_file, reason = NULL
 WHERE stocksync.file_drops.run_id = EXCLUDED.run_id
RETURNING drop_id
