-- A person acknowledges an incident with a note; `seen_until` is its last occurrence they were shown.
INSERT INTO stocksync.incident_acks (fingerprint, acknowledged_by, seen_until, note)
VALUES (%(fingerprint)s, %(acknowledged_by)s, %(seen_until)s, %(note)s)
RETURNING ack_id, acknowledged_at
