-- The latest acknowledgement of each of the fingerprints %(fingerprints)s.
SELECT DISTINCT ON (fingerprint) fingerprint, acknowledged_by, acknowledged_at, seen_until, note
  FROM stocksync.incident_acks
 WHERE fingerprint = ANY(%(fingerprints)s)
 ORDER BY fingerprint, ack_id DESC
