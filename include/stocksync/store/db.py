"""Database helpers: connections and the SQL files under `include/sql/<area>/<verb>_<object>.sql`.

SQL values are always bound parameters (`%(name)s`). Identifiers (a run's staging table)
are passed as `{name}` placeholders and composed with `psycopg.sql.Identifier`, never
by string formatting of values.

The shop is a seam (docs/shop-adapter.md): `shop/<name>` statements are read from the *shop
adapter folder*, `STOCKSYNC_SHOP_ADAPTER_DIR` (default: the reference adapter `include/sql/shop`),
and their `{shop}` placeholder is the shop's schema, `STOCKSYNC_SHOP_SCHEMA` (default `shop`).
Both are read on every call, so a deployment points stocksync at its own copy of the folder
without editing any file of ours, and a test can switch adapters within one process. What each
statement receives and must return is declared in `include/stocksync/shop/postgres/statements.py`.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

SQL_ROOT = Path(__file__).resolve().parents[2] / "sql"
PROJECT_ROOT = SQL_ROOT.parents[1]
STAGING_SCHEMA = "stocksync"

# The shop adapter seam. Environment variables for now (read here, not in settings.py, which is
# being reworked); they belong in the typed settings once that settles.
SHOP_ADAPTER_DIR_ENV = "STOCKSYNC_SHOP_ADAPTER_DIR"
SHOP_SCHEMA_ENV = "STOCKSYNC_SHOP_SCHEMA"
REFERENCE_SHOP_ADAPTER = SQL_ROOT / "shop"
DEFAULT_SHOP_SCHEMA = "shop"
SHOP_AREA = "shop/"


def shop_adapter_dir() -> Path:
    """The folder `shop/<name>` statements come from. A relative path is taken from the project
    root (the folder holding `include/`), not the working directory, which differs between the
    Airflow scheduler, its workers and the tests."""
    raw = os.environ.get(SHOP_ADAPTER_DIR_ENV, "").strip()
    if not raw:
        return REFERENCE_SHOP_ADAPTER
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def shop_schema() -> str:
    """The shop's schema name, filled into `{shop}`. Composed as an identifier, so any name is safe."""
    return os.environ.get(SHOP_SCHEMA_ENV, "").strip() or DEFAULT_SHOP_SCHEMA


def sql_path(name: str) -> Path:
    """Where statement `name` lives: `shop/*` in the shop adapter folder, the rest under `include/sql`."""
    if name.startswith(SHOP_AREA):
        return shop_adapter_dir() / f"{name.removeprefix(SHOP_AREA)}.sql"
    return SQL_ROOT / f"{name}.sql"


def sql_text(name: str) -> str:
    """Text of the SQL file `name`, e.g. `sql_text("shop/lock_stock")` (see `sql_path`)."""
    path = sql_path(name)
    try:
        return _read(path)
    except FileNotFoundError:
        if name.startswith(SHOP_AREA):
            raise FileNotFoundError(
                f"the shop adapter folder {path.parent} ({SHOP_ADAPTER_DIR_ENV}) has no {path.name}; "
                "every statement of include/stocksync/shop/postgres/statements.py must be there") from None
        raise


@cache
def _read(path: Path) -> str:
    """Cached by path: the files are read once per process (an adapter is deployed, not edited live)."""
    return path.read_text()


def query(name: str, **identifiers: str | sql.Composable) -> sql.Composed | sql.SQL:
    """The SQL file `name` with `{identifier}` placeholders filled in safely.

    A string identifier is a table in stocksync's schema, except `shop`: a schema name. A `shop/*`
    statement gets `shop` (the configured shop schema) unless the caller passes its own, so its
    callers never need to know the schema."""
    template = sql.SQL(sql_text(name))  # type: ignore[arg-type]
    if name.startswith(SHOP_AREA) and "shop" not in identifiers:
        identifiers["shop"] = sql.Identifier(shop_schema())
    if not identifiers:
        return template
    parts = {
        key: value if isinstance(value, sql.Composable)
        else sql.Identifier(value) if key == "shop" else staging_identifier(value)
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
                 **identifiers: str | sql.Composable) -> psycopg.Cursor:
    return conn.execute(query(name, **identifiers), params)
