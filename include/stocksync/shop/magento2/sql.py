"""Statements of a MySQL-family shop adapter: files under include/sql/<platform>/, the store's table
prefix put in for `{p}` (validated: letters, digits, `_`), values always bound (`%(name)s`)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SQL_ROOT = Path(__file__).resolve().parents[3] / "sql"
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,32}")
_STOCK_INDEX = "inventory_stock_{stock_id}"


def checked_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"table prefix {prefix!r}: use at most 32 letters, digits or '_' (the store's "
                         "db table prefix from its app/etc/env.php or config)")
    return prefix


@cache
def _text(platform: str, name: str) -> str:
    return (SQL_ROOT / platform / f"{name}.sql").read_text()


def statement(platform: str, name: str, prefix: str, **identifiers: str) -> str:
    """The statement `name` with `{p}` and the given identifier placeholders filled in."""
    text = _text(platform, name).replace("{p}", checked_prefix(prefix))
    for key, value in identifiers.items():
        text = text.replace("{" + key + "}", value)
    return text


def script(platform: str, name: str, prefix: str) -> list[str]:
    """A file of several statements (`;` at a line end), split for a driver that runs one at a time."""
    text = "\n".join(line for line in statement(platform, name, prefix).splitlines()
                     if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";\s*$", text, flags=re.MULTILINE) if part.strip()]


def stock_index_table(prefix: str, stock_id: int) -> str:
    """MSI's index table of a non-default stock (the id comes from the store's own link table)."""
    return checked_prefix(prefix) + _STOCK_INDEX.format(stock_id=int(stock_id))


def connect_args(dsn: str) -> dict[str, Any]:
    """`MySQLdb.connect` keyword arguments from `mysql://user:password@host:port/database`."""
    parts = urlsplit(dsn)
    if parts.scheme not in {"mysql", "mariadb"} or not parts.hostname or not parts.path.strip("/"):
        raise ValueError("the shop connection must be mysql://USER:PASSWORD@HOST:PORT/DATABASE (an Airflow "
                         f"MySQL connection's URI); got scheme {parts.scheme!r}")
    return {"host": parts.hostname, "port": parts.port or 3306, "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "database": unquote(parts.path.strip("/")),
            "charset": "utf8mb4"}
