"""The two kinds of failure a stocksync step can have, and how a task treats each.

- `PermanentError`: retrying cannot help (a contract or parse error in what the WMS sent, a
  snapshot whose time stamps are not sane, a walk that breaks a bound, a failed validation or
  guardrail, a refused parameter, a data error in the shop database). The task fails at once,
  without Airflow retries, so the teardown releases the freeze right away.
- `TransientError`: the same call may succeed later (connection refused or reset, timeouts, 429,
  5xx). Retried with backoff inside the step and then by Airflow's task retries.

Anything else that escapes a step is classified by `is_permanent()`: database connection
problems are transient, data and integrity errors are permanent, unknown errors are transient
(a retry is the safe default when we cannot tell; the retry budget still bounds it).
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot fix this; the message says what was wrong and what to do."""


class TransientError(Exception):
    """The same call may succeed later."""


def is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, PermanentError):
        return True
    if isinstance(exc, TransientError):
        return False
    # DataError (a value out of range, bad encoding), IntegrityError, ProgrammingError (a broken
    # shop adapter statement) do not heal by retrying; OperationalError (connection lost,
    # lock timeout, server restart) may. The same for both database drivers (PostgreSQL's and the
    # MySQL/MariaDB shops'), each imported only if installed.
    try:
        import psycopg

        if isinstance(exc, (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError)):
            return True
    except ImportError:  # pragma: no cover - psycopg is a runtime dependency
        pass
    try:
        import MySQLdb
    except ImportError:  # pragma: no cover - only for MySQL/MariaDB shops
        return False
    return isinstance(exc, (MySQLdb.DataError, MySQLdb.IntegrityError, MySQLdb.ProgrammingError,
                            MySQLdb.NotSupportedError))
