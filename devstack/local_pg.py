"""The embedded default database: a local PostgreSQL the project starts itself (no Docker).

Uses the server binaries of Debian's `postgresql` package (`scripts/bootstrap.sh` installs
it when missing). PostgreSQL refuses to run as root, so when we are root the server runs
as the `postgres` system user. Data lives in `.local/pg/<name>` under the project (never
committed). Durability settings are relaxed (`fsync=off`): this cluster is for demos,
tests and benchmarks, never for a real shop.

It listens on 127.0.0.1 only, but every local user can reach that, so TCP connections need the
`postgres` role's password (SCRAM); the Unix socket sits in a directory only the server's user
can enter and uses peer authentication. The password is random, made once per cluster name and
kept in `.local/secrets/pg-<name>-password` (0600); `dsn()` carries it, so callers need not know.
Clusters made by older versions trusted every local connection: `start()` gives the role its
password and rewrites `pg_hba.conf` in place, or, when it cannot log in to do so, recreates the
cluster (demo and test data only).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from devstack.local_secrets import (
    LOCAL_DIR,
    PRIVATE_DIR_MODE,
    PRIVATE_UMASK,
    TRAVERSE_ONLY_DIR_MODE,
    make_private_dir,
    pg_password,
    pg_password_file,
    tighten,
)

__all__ = ["LOCAL_DIR", "LocalPostgres", "LocalPostgresError", "find_bindir", "scram_verifier"]

SUPERUSER = "postgres"
# What a cluster of ours must use: no line may let a TCP client in without the password.
SECURE_METHODS = frozenset({"peer", "scram-sha-256", "reject"})
HBA_METHODS = SECURE_METHODS | {"trust", "md5", "password", "gss", "sspi", "ident", "ldap", "radius", "cert",
                                "pam", "bsd", "oauth"}
HBA_CONF = """\
# Written by devstack/local_pg.py: TCP clients need the password (SCRAM); the Unix socket, in a
# directory only the server's user can enter, uses peer authentication.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  peer
host    all          all   127.0.0.1/32   scram-sha-256
host    all          all   ::1/128        scram-sha-256
local   replication  all                  peer
host    replication  all   127.0.0.1/32   scram-sha-256
host    replication  all   ::1/128        scram-sha-256
"""
# libpq/server messages that mean "refused", as opposed to "not up yet"
_REFUSALS = ("password authentication failed", "no password supplied", "no pg_hba.conf entry",
             "authentication failed")


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


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5803 format).

    Computed here, as psql's \\password does, so the password itself never reaches the server
    (not even its statement log) nor any file the `postgres` user can read.
    """
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def hba_is_secure(text: str) -> bool:
    """Whether every rule of a pg_hba.conf uses a method of `SECURE_METHODS`."""
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        method = next((f for f in fields[1:] if f in HBA_METHODS), None)
        if method not in SECURE_METHODS:
            return False
    return True


class _Refused(Exception):
    """The server answered but would not let us in."""


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        # as PostgreSQL binds: connections of a server that just stopped (TIME_WAIT) do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    `start(allow_other_port=True)` picks a free one. `local_dir` is `.local/` unless a test
    wants a cluster of its own elsewhere. `scram_iterations` is the PBKDF2 count of the role's
    SCRAM verifier, set when the cluster is made (PostgreSQL's own 4096 unless a caller asks): every
    TCP login costs the client that many iterations."""

    name: str = "main"
    port: int = 55432
    database: str = "shop"
    local_dir: Path = LOCAL_DIR
    scram_iterations: int = 4096
    _password: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def base(self) -> Path:
        return self.local_dir / "pg" / self.name

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def sockdir(self) -> Path:
        return self.base / "run"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    @property
    def password_file(self) -> Path:
        return pg_password_file(self.name, self.local_dir)

    @property
    def password(self) -> str:
        """The `postgres` role's password (generated on first use, kept in `password_file`)."""
        if self._password is None:
            self._password = pg_password(self.name, self.local_dir)
        return self._password

    def dsn(self, database: str | None = None) -> str:
        return (f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/"
                f"{database or self.database}")

    def safe_dsn(self, database: str | None = None) -> str:
        """`dsn()` with the password masked, for messages a person reads."""
        return f"postgresql://{SUPERUSER}:***@127.0.0.1:{self.port}/{database or self.database}"

    # -- process management -------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, umask=PRIVATE_UMASK)

    @staticmethod
    def _server_user() -> pwd.struct_passwd:
        try:
            return pwd.getpwnam("postgres")
        except KeyError as exc:
            raise LocalPostgresError(
                "running as root needs the 'postgres' system user (created by Debian's postgresql package)"
            ) from exc

    def _prepare_dirs(self) -> None:
        """Private directories for the cluster; as root, just enough for the `postgres` user to
        reach its own (traverse-only `.local/` and `.local/pg/`, group postgres)."""
        if os.geteuid() != 0:
            for path in (self.local_dir, self.local_dir / "pg", self.base, self.sockdir):
                make_private_dir(path)
            return
        pg_user = self._server_user()
        for path in (self.local_dir, self.local_dir / "pg"):
            make_private_dir(path)
            os.chown(path, -1, pg_user.pw_gid)
            make_private_dir(path, TRAVERSE_ONLY_DIR_MODE)
        for path in (self.base, self.sockdir):
            make_private_dir(path)
            os.chown(path, pg_user.pw_uid, pg_user.pw_gid)
            make_private_dir(path, PRIVATE_DIR_MODE)
        # postgres must be able to reach the data directory through the project tree: inside
        # .local/ (a test's cluster elsewhere in it) as a group member only, above it as before
        for parent in self.local_dir.parents:
            st = parent.stat()
            if _can_traverse(st, pg_user):
                continue
            if parent == LOCAL_DIR or LOCAL_DIR in parent.parents:
                os.chown(parent, -1, pg_user.pw_gid)
                os.chmod(parent, TRAVERSE_ONLY_DIR_MODE)
            else:
                print(f"stocksync: letting the postgres user traverse {parent} (chmod o+x)", file=sys.stderr)
                os.chmod(parent, stat.S_IMODE(st.st_mode) | 0o001)

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
        """Initialise (first time) and start the cluster, make sure it wants our password, create
        the database. Idempotent."""
        bindir = find_bindir()
        self._prepare_dirs()
        tighten(self.local_dir)
        if not (self.datadir / "PG_VERSION").exists():
            self._initdb(bindir)
        self._start_server(bindir, allow_other_port)
        try:
            if not self.hba_secure():
                self._secure_in_place()
            self._wait_ready()
        except _Refused as exc:
            print(f"stocksync: the local PostgreSQL cluster {self.name!r} refuses the password in "
                  f"{self.password_file} ({exc}); recreating it (it holds demo/test data only)", file=sys.stderr)
            self.stop()
            shutil.rmtree(self.datadir)
            self._initdb(bindir)
            self._start_server(bindir, allow_other_port)
            self._wait_ready()
        self.create_database(self.database)
        return self

    def hba_secure(self) -> bool:
        try:
            return hba_is_secure((self.datadir / "pg_hba.conf").read_text())
        except FileNotFoundError:
            return False

    def _initdb(self, bindir: Path) -> None:
        # initdb reads the role's password from a file the server's user can read: give it the
        # verifier, not the password
        pwfile = self.base / f".initdb-pw-{secrets.token_hex(4)}"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(scram_verifier(self.password, self.scram_iterations) + "\n")
        if os.geteuid() == 0:
            pg_user = self._server_user()
            os.chown(pwfile, pg_user.pw_uid, pg_user.pw_gid)
        try:
            result = self._run(str(bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                               f"--pwfile={pwfile}", "--auth-local=peer", "--auth-host=scram-sha-256",
                               "-E", "UTF8", "--locale=C.UTF-8", check=False)
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalPostgresError(f"initdb failed for {self.datadir}: {result.stderr.strip()}")

    def _start_server(self, bindir: Path, allow_other_port: bool) -> None:
        running_port = self.running_port()
        if running_port is not None:
            self.port = running_port
            return
        if not _port_free(self.port):
            if not allow_other_port:
                raise LocalPostgresError(
                    f"port {self.port} on 127.0.0.1 is taken by another program; stop it or set "
                    "STOCKSYNC_PG_PORT to a free port")
            self.port = _free_port()
        options = (f"-k {self.sockdir} -p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_permissions=0700 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200 -c shared_buffers=256MB -c work_mem=64MB "
                   "-c maintenance_work_mem=256MB -c max_wal_size=4GB")
        result = self._run(str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                           "-l", str(self.logfile), "-o", options, check=False)
        if result.returncode != 0:
            log_tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise LocalPostgresError(
                f"could not start PostgreSQL on port {self.port}: {result.stderr.strip()}\n{log_tail}")

    def _secure_in_place(self) -> None:
        """Upgrade a cluster of an older version (trust for everyone): give the role its password,
        replace pg_hba.conf, reload, and wait until a passwordless TCP login is refused."""
        import psycopg
        from psycopg import sql

        self._wait_ready()  # trust lets any password in; _Refused when the cluster is not trust
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(SUPERUSER), sql.Literal(scram_verifier(self.password, self.scram_iterations))))
            with (self.datadir / "pg_hba.conf").open("w") as fh:  # keeps the file's owner and 0600
                fh.write(HBA_CONF)
            conn.execute("SELECT pg_reload_conf()")
        print(f"stocksync: the local PostgreSQL cluster {self.name!r} now wants a password over TCP "
              f"(kept in {self.password_file})", file=sys.stderr)
        deadline = time.monotonic() + 15
        while self.accepts_without_password():
            if time.monotonic() > deadline:
                raise LocalPostgresError(f"cluster {self.name!r} still lets TCP clients in without a password")
            time.sleep(0.1)

    def accepts_without_password(self, database: str = "postgres") -> bool:
        """Whether a TCP login as the superuser without any password gets in (it must not)."""
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database,
                                 passfile=str(self.base / ".no-passfile"), connect_timeout=5):
                return True
        except psycopg.OperationalError as exc:
            if any(refusal in str(exc) for refusal in _REFUSALS):
                return False
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until we can log in; `_Refused` at once when the server answers but refuses us."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if any(refusal in str(exc) for refusal in _REFUSALS):
                    raise _Refused(str(exc).strip().splitlines()[-1]) from exc
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


def _can_traverse(st: os.stat_result, user: pwd.struct_passwd) -> bool:
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == user.pw_uid:
        return bool(mode & 0o100)
    if st.st_gid == user.pw_gid or st.st_gid in {g.gr_gid for g in _groups_of(user.pw_name)}:
        return bool(mode & 0o010)
    return bool(mode & 0o001)


def _groups_of(username: str) -> list:
    import grp

    return [g for g in grp.getgrall() if username in g.gr_mem]


PORT_SETTING = "STOCKSYNC_PG_PORT"  # the checkout's cluster port: demo, stack and benchmarks
DEFAULT_PORT = 55432


def checkout_cluster(database: str = "shop", local_dir: Path = LOCAL_DIR) -> LocalPostgres:
    """This checkout's own cluster (`.local/pg/main`), on the port the demo uses: $STOCKSYNC_PG_PORT
    (default 55432). Two checkouts side by side set two ports."""
    return LocalPostgres(port=int(os.environ.get(PORT_SETTING, str(DEFAULT_PORT))), database=database,
                         local_dir=local_dir)


@contextmanager
def scratch_database(database: str, keep: bool = False, local_dir: Path = LOCAL_DIR) -> Iterator[LocalPostgres]:
    """A database of its own on the checkout's cluster, for a benchmark: the cluster is started if
    needed and stopped again on exit when this started it; the database is dropped on exit unless
    `keep` (a 10M-SKU catalog is gigabytes). The demo's own database is never touched. A SIGTERM
    (kill, a CI timeout) unwinds like Ctrl-C meanwhile, so the caller's `finally` blocks and these
    stop what was started."""
    pg = checkout_cluster(database, local_dir)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    was_running = pg.is_running()
    try:
        preferred = pg.port
        pg.start(allow_other_port=True)
        if pg.port != preferred:
            print(f"stocksync: port {preferred} is taken by another program; the cluster listens on {pg.port} "
                  f"(set {PORT_SETTING} to choose)", file=sys.stderr)
        try:
            yield pg
        finally:
            if not keep:
                pg.drop_database(database)
    finally:
        try:
            if not was_running:
                pg.stop()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
