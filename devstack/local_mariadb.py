"""A local MariaDB server the project starts itself (no Docker): the shop database of the
`magento2` and `prestashop` adapters in development, tests and benchmarks.

Uses the binaries of Debian's `mariadb-server` package (`scripts/bootstrap.sh` installs it). The
server runs as the `mysql` system user when we are root. Everything lives in `.local/mariadb/<name>`
(never committed): `data/` (0700, the server's), `run/` (its socket, 0700), `server.log`. It listens
on 127.0.0.1 only; `/etc/mysql` is ignored (`--no-defaults`), so a system MariaDB is never touched.

Clients log in over TCP as `stocksync` with a random password, made once per server name and kept in
`.local/secrets/mariadb-<name>-password` (0600). The server never sees the password itself: every
start runs an init file (0600, the server's) that sets the account to the password's
`mysql_native_password` hash, so the file on disk and the server agree even after the password file
was replaced. Durability is relaxed (`innodb_flush_log_at_trx_commit=2`, no doublewrite): demo and
test data only, never a real shop.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.local_pg import _can_traverse, _free_port, _port_free
from devstack.local_secrets import (
    LOCAL_DIR,
    PRIVATE_DIR_MODE,
    PRIVATE_UMASK,
    TRAVERSE_ONLY_DIR_MODE,
    make_private_dir,
    read_or_create_secret,
    secrets_dir,
    tighten,
    write_private,
)

__all__ = ["LocalMariaDB", "LocalMariaDBError", "native_password_hash"]

USER = "stocksync"
SERVER_USER = "mysql"  # Debian's mariadb-server system user, used when we run as root
PORT_SETTING = "STOCKSYNC_MARIADB_PORT"
DEFAULT_PORT = 33306
# InnoDB's buffer pool of the servers started here: small for the test clusters (one per xdist
# worker); a merchant's server holds its stock tables in memory, so the platform benchmark at 1M
# SKUs is run with a larger one (README, "On the platforms")
BUFFER_POOL_SETTING = "STOCKSYNC_MARIADB_BUFFER_POOL"
DEFAULT_BUFFER_POOL = "256M"
BUFFER_POOL_SIZE = re.compile(r"[1-9][0-9]{0,5}[MG]")


def buffer_pool_size() -> str:
    """`$STOCKSYNC_MARIADB_BUFFER_POOL` (e.g. 256M, 2G), checked before it reaches the server."""
    value = os.environ.get(BUFFER_POOL_SETTING, "").strip() or DEFAULT_BUFFER_POOL
    if not BUFFER_POOL_SIZE.fullmatch(value):
        raise LocalMariaDBError(f"{BUFFER_POOL_SETTING}={value!r}: give a size in megabytes or gigabytes, "
                                "e.g. 256M or 2G")
    return value


class LocalMariaDBError(RuntimeError):
    pass


def native_password_hash(password: str) -> str:
    """The `mysql_native_password` hash MariaDB stores (`*` + upper hex SHA1(SHA1(password)))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (not gone, not a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return False
    return fields[0] != "Z"


def _private_files_env() -> dict[str, str]:
    """UMASK/UMASK_DIR: the modes MariaDB's programs give the files and directories they create
    (their default, 0660, would let the mysql group read the tables)."""
    return {**os.environ, "UMASK": "0600", "UMASK_DIR": "0700"}


def _acl_lets_traverse(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether a POSIX ACL entry already lets `user` pass through `path` (effective x)."""
    getfacl = shutil.which("getfacl")
    if not getfacl:
        return False
    result = subprocess.run([getfacl, "-p", "-c", "-e", str(path)], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith(f"user:{user.pw_name}:"):
            perms = line.split("#effective:")[1] if "#effective:" in line else line.split(":")[2]
            return "x" in perms.strip()[:3]
    return False


def _let_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let the server's user pass through a directory of `.local/` (never list it), with a POSIX ACL
    entry: the directory's group may already be PostgreSQL's (devstack/local_pg.py), so the group
    cannot be the way for both. Mode 0710 keeps the ACL mask at traverse-only."""
    setfacl = shutil.which("setfacl")
    if not setfacl:
        raise LocalMariaDBError(f"the mysql user must traverse {path}: install Debian's acl package "
                                "(`apt-get install -y acl`; scripts/bootstrap.sh does this)")
    os.chmod(path, TRAVERSE_ONLY_DIR_MODE)
    subprocess.run([setfacl, "-m", f"u:{user.pw_name}:x", str(path)], check=True, capture_output=True)


def find_binaries() -> tuple[Path, Path]:
    """`mariadbd` and `mariadb-install-db` of Debian's mariadb-server package."""
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    install = shutil.which("mariadb-install-db")
    if not server or not install:
        raise LocalMariaDBError(
            "MariaDB server binaries not found. Install Debian's package: "
            "`apt-get install -y mariadb-server` (scripts/bootstrap.sh does this).")
    return Path(server), Path(install)


@dataclass
class LocalMariaDB:
    """A project-managed MariaDB server. `port` is the preferred port (`start(allow_other_port=True)`
    picks a free one when it is taken); a running server keeps the port it has."""

    name: str = "main"
    port: int = DEFAULT_PORT
    database: str = "shop"
    local_dir: Path = LOCAL_DIR
    _password: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def base(self) -> Path:
        return self.local_dir / "mariadb" / self.name

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def rundir(self) -> Path:
        return self.base / "run"

    @property
    def pidfile(self) -> Path:
        return self.rundir / "mariadbd.pid"

    @property
    def portfile(self) -> Path:
        return self.rundir / "port"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    @property
    def password_file(self) -> Path:
        return secrets_dir(self.local_dir) / f"mariadb-{self.name}-password"

    @property
    def password(self) -> str:
        if self._password is None:
            self._password = read_or_create_secret(self.password_file, 32)
        return self._password

    def connect_args(self, database: str | None = None) -> dict[str, object]:
        """Keyword arguments for `MySQLdb.connect` (the adapters' driver)."""
        return {"host": "127.0.0.1", "port": self.port, "user": USER, "password": self.password,
                "database": database or self.database, "charset": "utf8mb4"}

    def connect(self, database: str | None = None, autocommit: bool = False):  # noqa: ANN201 (MySQLdb has no stubs)
        import MySQLdb

        conn = MySQLdb.connect(**self.connect_args(database))
        conn.autocommit(autocommit)
        return conn

    # -- process management -------------------------------------------------------------
    def _server_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            raise LocalMariaDBError("running as root needs the 'mysql' system user (created by Debian's "
                                    "mariadb-server package)") from exc

    def _prepare_dirs(self) -> None:
        user = self._server_user()
        if user is None:
            for path in (self.local_dir, self.local_dir / "mariadb", self.base, self.rundir):
                make_private_dir(path)
            return
        make_private_dir(self.local_dir)
        mariadb_dir = self.local_dir / "mariadb"
        make_private_dir(mariadb_dir)
        os.chown(mariadb_dir, -1, user.pw_gid)
        make_private_dir(mariadb_dir, TRAVERSE_ONLY_DIR_MODE)
        for path in (self.base, self.rundir):
            make_private_dir(path)
            os.chown(path, user.pw_uid, user.pw_gid)
            make_private_dir(path, PRIVATE_DIR_MODE)
        for parent in (self.local_dir, *self.local_dir.parents):
            if _can_traverse(parent.stat(), user) or _acl_lets_traverse(parent, user):
                continue
            if parent == LOCAL_DIR or LOCAL_DIR in parent.parents or parent == self.local_dir:
                _let_traverse(parent, user)
            else:
                raise LocalMariaDBError(f"the mysql user cannot reach {self.base}: {parent} is closed to it "
                                        "(chmod o+x that directory)")

    def running_pid(self) -> int | None:
        """The server's pid while its pid file names a live process (the server removes the file when
        it stops; a process that already exited, or lingers as a zombie of whoever started it, is not
        running)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.running_pid() is not None

    def start(self, allow_other_port: bool = False) -> LocalMariaDB:
        """Initialise (first time) and start the server, set the account's password, create the
        database. Idempotent."""
        server, install = find_binaries()
        self._prepare_dirs()
        tighten(self.local_dir)
        if self.is_running():
            self.port = int(self.portfile.read_text())
        else:
            if not (self.datadir / "mysql").is_dir():
                self._install(install)
            self._start_server(server, allow_other_port)
        self._wait_ready()
        self.create_database(self.database)
        return self

    def _run_as_server(self, cmd: list[str]) -> list[str]:
        user = self._server_user()
        return ["runuser", "-u", user.pw_name, "--", *cmd] if user else cmd

    def _install(self, install: Path) -> None:
        user = self._server_user()
        result = subprocess.run(
            [str(install), "--no-defaults", f"--datadir={self.datadir}",
             f"--user={user.pw_name if user else pwd.getpwuid(os.geteuid()).pw_name}",
             "--auth-root-authentication-method=socket", "--skip-test-db"],
            capture_output=True, text=True, umask=PRIVATE_UMASK, check=False, env=_private_files_env())
        if result.returncode != 0:
            raise LocalMariaDBError(f"mariadb-install-db failed for {self.datadir}: {result.stderr.strip()[-2000:]}")

    def _init_file(self) -> Path:
        """SQL the server runs at start: the `stocksync` account, by password hash."""
        digest = native_password_hash(self.password)
        path = self.rundir / "init.sql"
        write_private(path, (
            f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{digest}';\n"
            f"ALTER USER '{USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{digest}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;\n"))
        user = self._server_user()
        if user:
            os.chown(path, user.pw_uid, user.pw_gid)
        return path

    def _start_server(self, server: Path, allow_other_port: bool) -> None:
        if not _port_free(self.port):
            if not allow_other_port:
                raise LocalMariaDBError(f"port {self.port} on 127.0.0.1 is taken by another program; stop it or "
                                        f"set {PORT_SETTING} to a free port")
            self.port = _free_port()
        init = self._init_file()
        cmd = [str(server), "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.rundir / 'mariadbd.sock'}",
               f"--pid-file={self.pidfile}", f"--port={self.port}", "--bind-address=127.0.0.1",
               f"--log-error={self.logfile}", f"--init-file={init}", "--skip-name-resolve",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
               "--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0",
               f"--innodb-buffer-pool-size={buffer_pool_size()}", "--max-connections=200",
               "--transaction-isolation=REPEATABLE-READ", "--sql-mode=STRICT_ALL_TABLES"]
        user = self._server_user()
        if user:
            cmd.insert(2, f"--user={user.pw_name}")
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, umask=PRIVATE_UMASK, env=_private_files_env())
        write_private(self.portfile, str(self.port))

    def _wait_ready(self, timeout: float = 60) -> None:
        import MySQLdb

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                self.connect("mysql").close()
                return
            except MySQLdb.OperationalError as exc:
                last = exc
                time.sleep(0.2)
        tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
        raise LocalMariaDBError(f"MariaDB {self.name!r} did not accept the stocksync login on port {self.port}: "
                                f"{last}\n{tail}")

    def create_database(self, database: str) -> None:
        if not database.replace("_", "").isalnum():
            raise LocalMariaDBError(f"database name {database!r}: use letters, digits and '_' only")
        conn = self.connect("mysql", autocommit=True)
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4")
        finally:
            conn.close()

    def drop_database(self, database: str) -> None:
        if not database.replace("_", "").isalnum():
            raise LocalMariaDBError(f"database name {database!r}: use letters, digits and '_' only")
        conn = self.connect("mysql", autocommit=True)
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            conn.close()

    def stop(self, timeout: float = 180) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):  # gone, or a zombie of whoever started it
                return
            time.sleep(0.1)
        raise LocalMariaDBError(f"MariaDB {self.name!r} (pid {pid}) did not stop within {timeout:.0f} s")


def checkout_server(database: str = "shop", local_dir: Path = LOCAL_DIR) -> LocalMariaDB:
    """This checkout's own server (`.local/mariadb/main`) on $STOCKSYNC_MARIADB_PORT (default 33306)."""
    return LocalMariaDB(port=int(os.environ.get(PORT_SETTING, str(DEFAULT_PORT))), database=database,
                        local_dir=local_dir)
