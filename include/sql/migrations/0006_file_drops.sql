-- Migration 0006 (docs/file-drop-source.md): the files a file-drop WMS source took.
-- One row per data file a run claimed (or refused before claiming: a data file without its
-- manifest at the wait deadline, an older file superseded by a newer one): what its manifest
-- claimed, what was read, where it went and why. The checksum memory: a file whose verified
-- SHA-256 a run applied is never applied again (the same bytes under a new manifest are a
-- duplicate, as the same snapshot id is).
CREATE TABLE IF NOT EXISTS stocksync.file_drops (
    drop_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text NOT NULL,
    dag_id        text NOT NULL,
    location      text NOT NULL,              -- the drop folder (URL) when the file was taken
    data_file     text NOT NULL,              -- name in that folder
    manifest_file text,                       -- NULL: the file had none
    manifest      jsonb,                      -- the manifest as read
    snapshot_id   text,                       -- as the manifest claims
    sha256        text,                       -- as the manifest claims (lowercase hex)
    sha256_verified boolean NOT NULL DEFAULT false,  -- the bytes read had that checksum
    row_count     bigint,                     -- as the manifest claims
    bytes         bigint,                     -- as read (compressed)
    rows_read     bigint,
    status        text NOT NULL DEFAULT 'claimed',  -- claimed | processed | duplicate | rejected | released | superseded
    reason        text,                       -- why it was refused or not applied
    duplicate_of  text,                       -- the run that applied the same snapshot or bytes
    moved_to      text,                       -- where the data file went (URL)
    claimed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at    timestamptz
);
-- One run at a time per file: a second claim of a file another run holds is refused.
CREATE UNIQUE INDEX IF NOT EXISTS file_drops_claimed_idx ON stocksync.file_drops (location, data_file)
    WHERE status = 'claimed';
CREATE INDEX IF NOT EXISTS file_drops_run_idx ON stocksync.file_drops (run_id);
CREATE INDEX IF NOT EXISTS file_drops_sha256_idx ON stocksync.file_drops (sha256) WHERE sha256_verified;
