-- Migration 0010: failures as incidents. An incident is not stored: it is the recorded alerts
-- (stocksync.alerts) that share a cause fingerprint (include/stocksync/ops/incidents.py). What is
-- stored is each acknowledgement: who (the logged-in Airflow user), when, their note, and the
-- newest occurrence they saw, so a later occurrence of the same cause reopens the incident.
CREATE TABLE IF NOT EXISTS stocksync.incident_acks (
    ack_id          bigserial PRIMARY KEY,
    fingerprint     text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{16}$'),
    acknowledged_by text NOT NULL CHECK (char_length(acknowledged_by) BETWEEN 1 AND 256),
    acknowledged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    seen_until      timestamptz NOT NULL,  -- the incident's last occurrence when it was acknowledged
    note            text NOT NULL CHECK (char_length(note) BETWEEN 1 AND 1000)
);
CREATE INDEX IF NOT EXISTS incident_acks_fingerprint_idx ON stocksync.incident_acks (fingerprint, ack_id DESC);
-- the incidents page reads the alerts of the last days, newest first
CREATE INDEX IF NOT EXISTS alerts_sent_at_idx ON stocksync.alerts (sent_at DESC);
