"""One owner of transactions on stocksync's own database: outside runs/ (the run record and its
unit of work, runs/uow.py) and store/ (migrations, roles), no module of include/stocksync calls
`.commit()` or opens a connection with `autocommit=True`; they commit through runs/uow.py. Shop
adapters (shop/) commit the shop's own transactions, which is the shop port's contract.

Checked by parsing every module (calls and keywords, wherever they are, lazy or not), and shown
catching what it is there for: a copy of the package with one commit added elsewhere fails."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path("include") / "stocksync"
# the folders whose modules may commit, and why
ALLOWED = {
    PACKAGE / "runs": "the run record and the unit of work everyone else commits through",
    PACKAGE / "store": "migrations and roles",
    PACKAGE / "shop": "the shop's own transactions (the shop port's contract)",
}
# a single module allowed, and why
ALLOWED_MODULES = {
    # the availability service's asyncio pool: psycopg's AsyncConnection, one statement per lookup
    PACKAGE / "availability" / "pool.py": "the availability service's own connection pool",
}


def transaction_calls(source: str) -> list[tuple[int, str]]:
    """(line, what) of every `.commit(...)` call and `autocommit=True` keyword in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "commit":
                found.append((node.lineno, ".commit()"))
            for keyword in node.keywords:
                if keyword.arg == "autocommit" and not (isinstance(keyword.value, ast.Constant)
                                                        and keyword.value.value is False):
                    found.append((node.lineno, "autocommit=True"))
    return found


def offenders(root: Path) -> list[str]:
    """`path:line what` of every transaction call outside the allowed modules, in the tree at `root`."""
    out = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        relative = path.relative_to(root)
        if relative in ALLOWED_MODULES or any(relative.is_relative_to(folder) for folder in ALLOWED):
            continue
        out.extend(f"{relative}:{line} {what}" for line, what in transaction_calls(path.read_text()))
    return out


def test_only_runs_and_store_commit_stocksyncs_database() -> None:
    assert offenders(PROJECT_ROOT) == []


@pytest.mark.parametrize(("statement", "what"), [
    ("def _bad(conn):\n    conn.commit()", ".commit()"),
    ("def _bad(dsn):\n    import psycopg\n    return psycopg.connect(dsn, autocommit=True)", "autocommit=True"),
])
def test_a_commit_outside_the_owner_fails_the_check(tmp_path: Path, statement: str, what: str) -> None:
    shutil.copytree(PROJECT_ROOT / PACKAGE, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    bad = tmp_path / PACKAGE / "sync" / "merge.py"
    lines = len(bad.read_text().splitlines())
    bad.write_text(bad.read_text() + "\n\n" + statement + "\n")
    found = offenders(tmp_path)
    assert len(found) == 1 and found[0].startswith(str(PACKAGE / "sync" / "merge.py") + ":")
    assert found[0].endswith(what) and int(found[0].split(":")[1].split()[0]) > lines
