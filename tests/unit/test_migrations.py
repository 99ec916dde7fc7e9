"""stocksync's schema migrations (include/stocksync/store/migrations.py) and the `db upgrade` command,
on a fresh database of the test cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from include.stocksync.config.settings import PROJECT_ROOT
from include.stocksync.store import migrations
from include.stocksync.store.db import connect


@pytest.fixture
def empty_db(shop_dsn: str) -> Iterator[str]:
    name = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(shop_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(shop_dsn)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(shop_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_upgrade_applies_every_migration_once_in_order(empty_db: str) -> None:
    names = [p.stem for p in migrations.available()]
    assert names == sorted(names) and names[0].startswith("0001_")
    assert migrations.pending(empty_db) == names
    assert migrations.upgrade(empty_db) == names
    assert migrations.upgrade(empty_db) == []  # idempotent: nothing applied twice
    assert migrations.pending(empty_db) == []
    with connect(empty_db) as conn:
        recorded = [r[0] for r in conn.execute("SELECT version FROM stocksync.schema_migrations ORDER BY version")]
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'stocksync' "
            "AND table_name = 'sync_runs'")}
    assert recorded == names
    assert {"first_error", "attempts", "warnings", "options"} <= columns


def test_a_database_made_by_the_old_create_script_upgrades(empty_db: str) -> None:
    """A deployment from before migrations has the baseline tables but no migration table."""
    with connect(empty_db) as conn:
        conn.execute(migrations.available()[0].read_bytes())  # what the old create script made
        conn.commit()
    assert migrations.upgrade(empty_db)[0].startswith("0001_")  # the baseline is idempotent
    assert migrations.pending(empty_db) == []


def test_db_upgrade_command_takes_the_database_from_the_environment(empty_db: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "STOCKSYNC_DSN": empty_db}
    first = subprocess.run([sys.executable, "-m", "include.stocksync", "db", "upgrade"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "0001_baseline" in first.stdout
    again = subprocess.run([sys.executable, "-m", "include.stocksync", "db", "pending"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.strip() == "up to date"
