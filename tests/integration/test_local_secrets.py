"""The local stack's secrets: none of them a constant, none readable by another local user.

On a shared machine every user can reach 127.0.0.1, list every process's command line (`ps`)
and read whatever files are world-readable. So the checks here take the point of view of such a
user: can they log in to the local PostgreSQL without the password, see a token or password in
a command line of a process we started, or read anything under `.local/`? Each test starts the
real services through the same code the demo and the other tests use, in a scratch directory
under `.local/` of its own (the Airflow check looks at the session's shared standalone, started by
that code too), and looks at the result from the outside (/proc, file modes, TCP).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg.conninfo import conninfo_to_dict

from devstack.airflow_standalone import AirflowStandalone, wait_for_dags, wait_for_run
from devstack.local_pg import LOCAL_DIR, LocalPostgres, find_bindir
from devstack.local_secrets import airflow_jwt_secret
from devstack.local_stack import LocalStack, WmsProcess, free_port
from include.stocksync.store.db import run_key
from tests.conftest import TEST_TOKEN, shop_in_line_with_wms

AS_ROOT = os.geteuid() == 0
NO_PASSFILE = str(Path(tempfile.gettempdir()) / "stocksync-no-such-passfile")  # libpq must not find one


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A `.local/`-like directory of this module's own (the real one belongs to the demo)."""
    path = LOCAL_DIR / f"test-secrets-{secrets.token_hex(4)}"
    yield path
    for cluster in (path / "pg").glob("*"):
        LocalPostgres(name=cluster.name, local_dir=path).stop()
    shutil.rmtree(path, ignore_errors=True)


def no_password_login(port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", passfile=NO_PASSFILE,
                           connect_timeout=5)


def process_tree(*roots: int) -> set[int]:
    """`roots` and all their descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat_file.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat_file.parent.name))
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return seen


def leaked_on_command_lines(pids: set[int], values: set[str]) -> dict[int, str]:
    """The command lines (as `ps` shows them to anyone) that contain one of `values`."""
    leaks = {}
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        if any(value in cmdline for value in values):
            leaks[pid] = cmdline
    return leaks


def open_to_others(root: Path, traverse_only: set[Path] = frozenset()) -> list[str]:
    """Everything under `root` that a user other than its owner may read, write or list.

    Allowed: the directories in `traverse_only`, as root only, when they are 0710 and group
    `postgres` (the server reaches its cluster through them without seeing anything else)."""
    pg_gid = pwd.getpwnam("postgres").pw_gid if AS_ROOT else None
    paths = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        paths.extend(Path(dirpath) / name for name in dirnames + filenames)
    found = []
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue  # a server's temporary file, gone meanwhile
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode) or not mode & 0o077:
            continue
        if (path in traverse_only and AS_ROOT and stat.S_ISDIR(st.st_mode) and mode & 0o077 == 0o010
                and st.st_gid == pg_gid):
            continue
        found.append(f"{oct(mode)} {path}")
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- PostgreSQL -------------------------------------------------------------------------------

def test_the_test_cluster_wants_its_password_over_tcp(pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(psycopg.OperationalError, match="no password supplied|password authentication failed"):
        no_password_login(pg.port)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres",
                        password="not-" + pg.password, connect_timeout=5)
    with psycopg.connect(pg.dsn(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert stat.S_IMODE(pg.password_file.stat().st_mode) == 0o600
    assert pg.password_file.read_text().strip() == pg.password
    assert len(pg.password) >= 32


@pytest.mark.skipif(not AS_ROOT, reason="needs another OS user to log in as")
def test_another_local_user_gets_in_neither_by_tcp_nor_by_socket(pg: LocalPostgres) -> None:
    psql = str(find_bindir() / "psql")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PGPASSFILE": NO_PASSFILE, "PGCONNECT_TIMEOUT": "5"}
    for host in ("127.0.0.1", str(pg.sockdir)):
        result = subprocess.run(["runuser", "-u", "nobody", "--", psql, "-h", host, "-p", str(pg.port), "-U",
                                 "postgres", "-d", "postgres", "-w", "-c", "SELECT 1"],
                                capture_output=True, text=True, env=env, cwd="/")
        assert result.returncode != 0, f"nobody logged in through {host}"
        assert "no password supplied" in result.stderr or "Permission denied" in result.stderr, result.stderr


def test_an_old_trust_cluster_is_secured_in_place_and_recreated_when_locked_out(scratch: Path) -> None:
    old = LocalPostgres(name="old", port=free_port(), database="shop", local_dir=scratch)
    bindir = find_bindir()
    # the cluster as the previous version left it: trust for every local connection
    old._prepare_dirs()
    old._run(str(bindir / "initdb"), "-D", str(old.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8")
    old._run(str(bindir / "pg_ctl"), "start", "-w", "-D", str(old.datadir), "-l", str(old.logfile), "-o",
             f"-k {old.sockdir} -p {old.port} -c listen_addresses=127.0.0.1")
    with no_password_login(old.port) as conn:  # really open to begin with
        conn.autocommit = True
        conn.execute("CREATE DATABASE shop")
    with psycopg.connect(host="127.0.0.1", port=old.port, user="postgres", dbname="shop", passfile=NO_PASSFILE) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('demo data')")

    old.start()
    with pytest.raises(psycopg.OperationalError, match="no password supplied|password authentication failed"):
        no_password_login(old.port)
    with psycopg.connect(old.dsn()) as conn:  # upgraded in place: the data is still there
        assert conn.execute("SELECT v FROM kept").fetchall() == [("demo data",)]
    assert "trust" not in [line.split()[-1] for line in (old.datadir / "pg_hba.conf").read_text().splitlines()
                           if line.strip() and not line.startswith("#")]

    # the password is lost: nobody can log in to set a new one, so the cluster is made again
    old.password_file.unlink()
    again = LocalPostgres(name="old", port=old.port, database="shop", local_dir=scratch).start()
    assert again.password != old.password
    with pytest.raises(psycopg.OperationalError, match="no password supplied|password authentication failed"):
        no_password_login(again.port)
    with psycopg.connect(again.dsn()) as conn:
        assert conn.execute("SELECT to_regclass('kept')").fetchone() == (None,)
    again.stop()


# -- the local stack ------------------------------------------------------------------------

def test_the_local_stack_keeps_secrets_off_command_lines_and_out_of_reach(scratch: Path) -> None:
    # leftovers of an older version, readable by everyone: tightened on start
    (scratch / "airflow").mkdir(parents=True, exist_ok=True)
    leftovers = [scratch / "alerts.jsonl", scratch / "wms.log", scratch / "airflow" / "airflow.db"]
    for path in leftovers:
        path.write_text("old\n")
    for path in [scratch, scratch / "airflow", *leftovers]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    stack = LocalStack(pg=LocalPostgres(name="stack", port=free_port(), local_dir=scratch), wms_port=free_port(),
                       webhook_port=free_port(), wms_skus=10, local_dir=scratch)
    own_token = secrets.token_urlsafe(24)
    wms = None
    try:
        stack.start()
        wms = WmsProcess(free_port(), own_token, skus=5)  # the way the tests and the benchmark start it
        env = stack.airflow_env()
        assert requests.post(f"{stack.webhook.url}/alert", json={"run": "x"}, timeout=5).ok

        # the tokens arrive (they work, a wrong one does not), just not through argv
        for url, token in ((stack.wms.url, stack.token), (wms.url, own_token)):
            assert requests.get(f"{url}/v1/stock", headers=bearer(token), timeout=5).status_code == 200
            assert requests.get(f"{url}/v1/stock", headers=bearer(token + "x"), timeout=5).status_code == 401
        postmaster = int((stack.pg.datadir / "postmaster.pid").read_text().split()[0])
        pids = process_tree(os.getpid(), postmaster) - {os.getpid()}
        assert {stack.wms.pid(), stack.webhook.pid(), wms.process.pid, postmaster} <= pids
        assert len(pids) > 6  # the postmaster's workers too
        values = {stack.token, own_token, TEST_TOKEN, stack.pg.password, env["AIRFLOW__API_AUTH__JWT_SECRET"]}
        assert leaked_on_command_lines(pids, values) == {}

        # none of the secrets is a constant of the code
        assert len({stack.token, stack.pg.password, env["AIRFLOW__API_AUTH__JWT_SECRET"]}) == 3
        assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == airflow_jwt_secret(scratch)  # reused, not remade

        for name in ("secrets/wms-token", "secrets/airflow-jwt-secret", "secrets/pg-stack-password", "wms.pid",
                     "wms.log", "webhook.pid", "webhook.log", "alerts.jsonl", "pg/stack/server.log"):
            assert (scratch / name).is_file(), name
        assert "/alert" in (scratch / "alerts.jsonl").read_text()
        assert open_to_others(scratch, {scratch, scratch / "pg"}) == []
    finally:
        if wms is not None:
            wms.stop()
        stack.stop()


def test_the_real_local_dir_is_private(pg: LocalPostgres) -> None:
    """`.local/` itself (where the demo's secrets, alerts and Airflow DB live) after our start."""
    st = LOCAL_DIR.stat()
    mode = stat.S_IMODE(st.st_mode)
    if AS_ROOT:
        assert mode == 0o710 and st.st_gid == pwd.getpwnam("postgres").pw_gid, oct(mode)
    else:
        assert mode == 0o700, oct(mode)
    assert stat.S_IMODE((LOCAL_DIR / "secrets").stat().st_mode) == 0o700


# -- Airflow ------------------------------------------------------------------------------------

@pytest.mark.slow
def test_airflow_standalone_keeps_secrets_off_command_lines_and_its_home_private(
        shared_airflow: AirflowStandalone, clean_shop: str, wms: Any) -> None:
    """The session's standalone (tests/integration/conftest.py: the same `AirflowStandalone` the demo
    stack starts, its home private), seen from the outside once a dry run has written its logs."""
    shop_in_line_with_wms(clean_shop, wms, 20, 5, drift_share=0.5)
    standalone = shared_airflow.launch().wait_ready(timeout=240)  # launch(): again if a module before gave up
    home = standalone.home
    push = "inventory_full_push"
    wait_for_dags(standalone, {push})  # a dry run writes task logs and a report
    assert standalone.api("PATCH", f"/api/v2/dags/{push}", json={"is_paused": False}).ok
    try:
        run = standalone.api("POST", f"/api/v2/dags/{push}/dagRuns",
                             json={"logical_date": None, "conf": {"dry_run": True}}).json()
        state = wait_for_run(standalone, push, run["dag_run_id"], timeout=300)["state"]
    finally:  # the other modules on this standalone find the push as they would a new one: paused
        assert standalone.api("PATCH", f"/api/v2/dags/{push}", json={"is_paused": True}).ok
    assert state == "success"

    assert standalone.process is not None
    pids = process_tree(standalone.process.pid)
    assert len(pids) > 4  # scheduler, dag-processor, api-server, triggerer, ...
    values = {TEST_TOKEN, standalone.password, standalone.env["AIRFLOW__API_AUTH__JWT_SECRET"],
              conninfo_to_dict(clean_shop)["password"]}
    assert leaked_on_command_lines(pids, values) == {}

    logs = [p for p in (home / "logs").rglob("*") if p.is_file()]
    assert any(f"run_id={run['dag_run_id']}" in str(p) for p in logs), logs  # this run's task logs were written
    assert (home / "airflow.db").is_file() and (home / "simple_auth_manager_passwords.json").is_file()
    reports = Path(standalone.env["STOCKSYNC_REPORTS_DIR"])  # the session's, outside the home
    assert (reports / run_key(run["dag_run_id"]) / "report.html").is_file()
    assert open_to_others(home) == [] and open_to_others(reports) == []
