-- A file refused or set aside without a claim: a data file without its manifest at the wait
-- deadline, a manifest without its data file, an older file superseded by a newer one.
INSERT INTO stocksync.file_drops (run_id, dag_id, location, data_file, manifest_file, status, reason, moved_to,
                                  settled_at)
VALUES (%(run_id)s, %(dag_id)s, %(location)s, %(data_file)s, %(manifest_file)s, %(status)s, %(reason)s,
        %(moved_to)s, clock_timestamp())
