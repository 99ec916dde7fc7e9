"""Airflow Connections as the libpq DSNs stocksync's code takes (used inside tasks, callbacks and
the plugin's request handlers, never at import time)."""

from __future__ import annotations


def postgres_dsn(conn_id: str) -> str:
    """The DSN of a Postgres Connection (host, port, login, password, schema = database)."""
    from airflow.sdk import BaseHook
    from psycopg.conninfo import make_conninfo

    conn = BaseHook.get_connection(conn_id)
    return make_conninfo(host=conn.host or "127.0.0.1", port=conn.port or 5432, user=conn.login or None,
                         password=conn.password or None, dbname=conn.schema or "postgres")
