"""The direction of imports inside include/stocksync (the contracts in `.importlinter`), checked
by import-linter's own `lint-imports` on the real tree, and shown to catch what it is there for:
a copy of the package with one wrong-way import added (core importing a page, a cycle between
two modules, Airflow imported outside the Airflow layer) fails, naming the contract it breaks."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG = PROJECT_ROOT / ".importlinter"
# import-linter's `lint-imports` command, run by this interpreter (wherever the venv puts scripts)
LINT_IMPORTS = (sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()")

# the contracts' names as `.importlinter` declares them (import-linter prints them as given)
LAYERS = "Layers: entry points over airflow/availability over ui over sync over ops over runs over shop/wms " \
         "over store over config over domain"
CORE_NEVER_IMPORTS_UI = "Core (domain, config, store, shop, wms, runs, ops, sync) never imports ui"
AIRFLOW_ONLY = "Only include.stocksync.airflow imports Airflow"
ACYCLIC = "No import cycles between the modules of any package"
CONTRACTS = (LAYERS, CORE_NEVER_IMPORTS_UI, AIRFLOW_ONLY, ACYCLIC)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the tree at `root` (its `include` package, its `.importlinter`), in a
    process of its own so that `include` is imported from `root` and nowhere else."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "1000"}  # wide: one contract per line
    return subprocess.run([*LINT_IMPORTS, "--no-cache", "--no-logo", str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def status_lines(output: str) -> dict[str, str]:
    """Each contract's summary line, `<name> KEPT` or `<name> BROKEN`, possibly followed by how
    many imports it ignores: name -> KEPT / BROKEN."""
    found = {}
    for line in output.splitlines():
        for name in CONTRACTS:
            if line.startswith(name + " KEPT") or line.startswith(name + " BROKEN"):
                found[name] = line[len(name) + 1:].split()[0]
    return found


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the project's `include` package and its contracts, to break on purpose."""
    shutil.copytree(PROJECT_ROOT / "include", tmp_path / "include",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(CONFIG, tmp_path / ".importlinter")
    return tmp_path


def lint_with(root: Path, module: str, statement: str) -> tuple[dict[str, str], str]:
    """Append `statement` at the top level of `module` (a dotted name) in the copy at `root`, run
    `lint-imports` on the copy, which must fail: each contract's status, and the report."""
    path = root / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}\n")
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    return status_lines(result.stdout), result.stdout


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert status_lines(result.stdout) == dict.fromkeys(CONTRACTS, "KEPT"), result.stdout


def test_no_contract_ignores_a_wrong_way_import() -> None:
    """Every contract holds for the whole tree: none lists an `ignore_imports` exception (what a
    lower layer needs of Airflow or of the pages is handed down by include/stocksync/airflow)."""
    contracts = configparser.ConfigParser()
    contracts.read(CONFIG)
    ignoring = {section: contracts[section]["ignore_imports"].split() for section in contracts.sections()
                if "ignore_imports" in contracts[section]}
    assert ignoring == {}


# (what is added, to which module; each contract's status then; a line the report must hold)
WRONG_WAY = {
    "a core module importing a page": (
        "include.stocksync.domain.errors", "from include.stocksync.ui import pages  # noqa",
        {LAYERS: "BROKEN", CORE_NEVER_IMPORTS_UI: "BROKEN", AIRFLOW_ONLY: "KEPT", ACYCLIC: "BROKEN"},
        "include.stocksync.domain.errors -> include.stocksync.ui.pages"),
    # `lifecycle` imports `record`; `record` importing `lifecycle` back closes a cycle inside `runs`
    "a cycle between two modules": (
        "include.stocksync.runs.record", "from include.stocksync.runs import lifecycle  # noqa",
        {LAYERS: "KEPT", CORE_NEVER_IMPORTS_UI: "KEPT", AIRFLOW_ONLY: "KEPT", ACYCLIC: "BROKEN"},
        "No cycles are allowed in include.stocksync.runs"),
    # even inside a function: a lazy import is a dependency all the same
    "Airflow imported lazily outside the Airflow layer": (
        "include.stocksync.sync.merge", "def _lazy() -> None:\n    from airflow.sdk import BaseHook  # noqa",
        {LAYERS: "KEPT", CORE_NEVER_IMPORTS_UI: "KEPT", AIRFLOW_ONLY: "BROKEN", ACYCLIC: "KEPT"},
        "include.stocksync.sync.merge -> airflow"),
    # the sync code is handed its DSN, it never asks the Airflow layer's connection lookup (which
    # imports the sync code: asking it would close a cycle too)
    "the sync code asking the Airflow layer": (
        "include.stocksync.sync.order_push", "from include.stocksync.airflow.connections import postgres_dsn  # noqa",
        {LAYERS: "BROKEN", CORE_NEVER_IMPORTS_UI: "KEPT", AIRFLOW_ONLY: "KEPT", ACYCLIC: "BROKEN"},
        "include.stocksync.sync.order_push -> include.stocksync.airflow.connections"),
}


@pytest.mark.parametrize("case", list(WRONG_WAY))
def test_a_wrong_way_import_fails_the_check_naming_the_contract_it_breaks(package_copy: Path, case: str) -> None:
    module, statement, expected, named = WRONG_WAY[case]
    statuses, report = lint_with(package_copy, module, statement)
    assert statuses == expected, report
    assert named in report
