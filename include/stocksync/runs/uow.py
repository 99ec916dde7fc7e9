"""The one owner of transactions on stocksync's own database: only runs/ (the run record) and
store/ (migrations, roles) commit it, and every other layer commits through these. Shop adapters
commit the shop's own transactions (the shop port's contract) and are not concerned.
tests/unit/test_transaction_owner.py keeps it so.

`committed(conn)` commits what its block did on `conn` when the block ends without an error; on an
error nothing is committed and the transaction is left to the connection's owner (the `with
connect(...)` around it rolls it back), exactly as a `conn.commit()` after the same statements.
`transaction(dsn)` is a connection of its own whose work is committed that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from include.stocksync.store.db import connect


@contextmanager
def committed(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """What the block does on `conn`, committed when it ends without an error."""
    yield conn
    conn.commit()


@contextmanager
def transaction(dsn: str, **connect_kwargs: Any) -> Iterator[psycopg.Connection]:
    """A connection to stocksync's database whose work is committed when the block ends without an
    error (rolled back with the connection otherwise)."""
    with connect(dsn, **connect_kwargs) as conn, committed(conn):
        yield conn
