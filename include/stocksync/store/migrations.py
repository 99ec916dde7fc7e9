"""stocksync's own schema (`stocksync.*`: run records, audit, DQ results...) evolves through
numbered migrations in `include/sql/migrations/NNNN_name.sql`, applied once each, in order, and
recorded in `stocksync.schema_migrations`. `python -m include.stocksync db upgrade` applies them
to a deployment's database (docs/operations.md); the DAGs never change the schema.
"""

from __future__ import annotations

import logging
from pathlib import Path

from include.stocksync.store.db import SQL_ROOT, connect

log = logging.getLogger(__name__)

MIGRATIONS = SQL_ROOT / "migrations"
# one upgrade at a time per database, whoever runs it
LOCK_KEY = 0x5707C5A11


def available() -> list[Path]:
    return sorted(MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def upgrade(dsn: str) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction. Returns their names."""
    applied_now: list[str] = []
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS stocksync")
            conn.execute("CREATE TABLE IF NOT EXISTS stocksync.schema_migrations ("
                         "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            conn.commit()
            done = {row[0] for row in conn.execute("SELECT version FROM stocksync.schema_migrations")}
            conn.commit()
            for path in available():
                version = path.stem
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_bytes())
                    conn.execute("INSERT INTO stocksync.schema_migrations (version) VALUES (%s)", (version,))
                log.info("applied migration %s", version)
                applied_now.append(version)
            conn.commit()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            conn.commit()
    return applied_now


def pending(dsn: str) -> list[str]:
    with connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('stocksync.schema_migrations')").fetchone()
        done = {r[0] for r in conn.execute("SELECT version FROM stocksync.schema_migrations")} \
            if exists and exists[0] else set()
    return [p.stem for p in available() if p.stem not in done]
