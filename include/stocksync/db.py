"""Database helpers: connections and the SQL files under `include/sql/<area>/<verb>_<object>.sql`.

SQL values are always bound parameters (`%(name)s`). Identifiers (a run's staging table)
are passed as `{name}` placeholders and composed with `psycopg.sql.Identifier`, never
by string formatting of values.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SQL_ROOT = Path(__file__).resolve().parents[1] / "sql"
STAGING_SCHEMA = "stocksync"


@cache
def sql_text(name: str) -> str:
    """Text of `include/sql/<name>.sql`, e.g. `sql_text("shop/lock_stock")`."""
    path = SQL_ROOT / f"{name}.sql"
    return path.read_text()


def query(name: str, **identifiers: str | sql.Composable) -> sql.Composed | sql.SQL:
    """The SQL file `name` with `{identifier}` placeholders filled in safely."""
    template = sql.SQL(sql_text(name))  # type: ignore[arg-type]
    if not identifiers:
        return template
    parts = {
        key: value if isinstance(value, sql.Composable) else staging_identifier(value)
        for key, value in identifiers.items()
    }
    return template.format(**parts)


def staging_identifier(table: str) -> sql.Identifier:
    """`stocksync.<table>` as a safe identifier."""
    return sql.Identifier(STAGING_SCHEMA, table)


def run_key(run_id: str) -> str:
    """A short, identifier-safe key for a DAG run id (used in staging table names and paths)."""
    return hashlib.sha1(run_id.encode()).hexdigest()[:16]


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(dsn, application_name="stocksync", **kwargs)


def execute_file(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None,
                 **identifiers: str) -> psycopg.Cursor:
    return conn.execute(query(name, **identifiers), params)
