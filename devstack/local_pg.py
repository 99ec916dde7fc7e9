"""The embedded default database: a local PostgreSQL the project starts itself (no Docker).

Uses the server binaries of Debian's `postgresql` package (`scripts/bootstrap.sh` installs
it when missing). PostgreSQL refuses to run as root, so when we are root the server runs
as the `postgres` system user. Data lives in `.local/pg/<name>` under the project (never
committed). Durability settings are relaxed (`fsync=off`): this cluster is for demos,
tests and benchmarks, never for a real shop.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from include.stocksync.settings import PROJECT_ROOT

LOCAL_DIR = PROJECT_ROOT / ".local"


class LocalPostgresError(RuntimeError):
    pass


def find_bindir() -> Path:
    """Directory holding `initdb`, `pg_ctl` and `postgres`."""
    override = os.environ.get("STOCKSYNC_PG_BINDIR")
    candidates = [override] if override else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(str(Path(pg_ctl).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise LocalPostgresError(
        "PostgreSQL server binaries not found. Install Debian's package: "
        "`apt-get install -y postgresql` (scripts/bootstrap.sh does this), or set STOCKSYNC_PG_BINDIR."
    )


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalPostgres:
    """A project-managed cluster. `port` is the preferred port: when the cluster is already
    running, its actual port is used; when the preferred port is taken by something else,
    `start(allow_other_port=True)` picks a free one."""

    name: str = "main"
    port: int = 55432
    database: str = "shop"

    @property
    def datadir(self) -> Path:
        return LOCAL_DIR / "pg" / self.name / "data"

    @property
    def sockdir(self) -> Path:
        return LOCAL_DIR / "pg" / self.name / "run"

    @property
    def logfile(self) -> Path:
        return LOCAL_DIR / "pg" / self.name / "server.log"

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"

    # -- process management -------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def _prepare_dirs(self) -> None:
        base = LOCAL_DIR / "pg" / self.name
        for path in (base, self.sockdir):
            path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                pg_user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise LocalPostgresError(
                    "running as root needs the 'postgres' system user (created by Debian's postgresql package)"
                ) from exc
            for path in (base, self.sockdir):
                os.chown(path, pg_user.pw_uid, pg_user.pw_gid)
            # postgres must be able to reach the data directory through the project tree
            for parent in [LOCAL_DIR / "pg", LOCAL_DIR, *LOCAL_DIR.parents]:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    print(f"stocksync: letting the postgres user traverse {parent} (chmod o+x)", file=sys.stderr)
                    os.chmod(parent, mode | 0o001)

    def is_running(self) -> bool:
        bindir = find_bindir()
        if not (self.datadir / "PG_VERSION").exists():
            return False
        result = self._run(str(bindir / "pg_ctl"), "status", "-D", str(self.datadir), check=False)
        return result.returncode == 0

    def running_port(self) -> int | None:
        """The port of the running cluster (from postmaster.pid), or None."""
        pidfile = self.datadir / "postmaster.pid"
        if not self.is_running() or not pidfile.exists():
            return None
        lines = pidfile.read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def start(self, allow_other_port: bool = False) -> LocalPostgres:
        """Initialise (first time) and start the cluster, create the database. Idempotent."""
        bindir = find_bindir()
        self._prepare_dirs()
        if not (self.datadir / "PG_VERSION").exists():
            self._run(str(bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        running_port = self.running_port()
        if running_port is not None:
            self.port = running_port
        else:
            if not _port_free(self.port):
                if not allow_other_port:
                    raise LocalPostgresError(
                        f"port {self.port} on 127.0.0.1 is taken by another program; stop it or set "
                        "STOCKSYNC_PG_PORT to a free port")
                self.port = _free_port()
            options = (f"-k {self.sockdir} -p {self.port} -c listen_addresses=127.0.0.1 "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=200 -c shared_buffers=256MB -c work_mem=64MB "
                       "-c maintenance_work_mem=256MB -c max_wal_size=4GB")
            result = self._run(str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                               "-l", str(self.logfile), "-o", options, check=False)
            if result.returncode != 0:
                log_tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
                raise LocalPostgresError(
                    f"could not start PostgreSQL on port {self.port}: {result.stderr.strip()}\n{log_tail}")
        self._wait_ready()
        self.create_database(self.database)
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def create_database(self, database: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{database}"')  # name comes from our code, not user input

    def drop_database(self, database: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def stop(self) -> None:
        if self.is_running():
            self._run(str(find_bindir() / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "fast", "-w")
