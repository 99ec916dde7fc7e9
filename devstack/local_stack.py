"""The embedded default stack: local PostgreSQL, the WMS service, the alert webhook receiver,
and the Airflow environment that points at them.

Everything runs on 127.0.0.1 and keeps its state under `.local/` (never committed).
Services started here run in the background and are reused by the next command; `stop()`
ends them.

Credentials are generated per checkout (`devstack/local_secrets.py`), never constants: the WMS
bearer token, the Airflow JWT secret and the PostgreSQL password. Secrets reach the processes we
start through files or environment variables, never their command lines, which any local user
can read with `ps`; the processes run with umask 077 and write their logs and pid files 0600.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import requests

from devstack.demo_seed import WmsAdmin
from devstack.local_pg import LOCAL_DIR, LocalPostgres, checkout_cluster
from devstack.local_secrets import (
    PRIVATE_UMASK,
    airflow_jwt_secret,
    make_private_dir,
    open_private_log,
    tighten,
    wms_token,
    wms_token_file,
    write_private,
)
from include.stocksync.config.settings import PROJECT_ROOT, WRITER_POOL

WMS_TOKEN_ENV = "STOCKSYNC_WMS_TOKEN"
WMS_PORT_SETTING = "STOCKSYNC_WMS_PORT"
WEBHOOK_PORT_SETTING = "STOCKSYNC_WEBHOOK_PORT"
# stocksync's own database on the stack's cluster, apart from the reference shop's (`LocalPostgres.database`,
# "shop"): a statement that joins across the two fails here as it would in a deployment
STOCKSYNC_DATABASE = "stocksync"
# the Airflow connection of stocksync's own database (`stocksync_conn_id`), as docker-compose.yaml names it
STOCKSYNC_CONN_ID = "stocksync_db"


class LocalStackError(RuntimeError):
    """The local stack cannot start as configured (the message says what to change)."""


@dataclass(frozen=True)
class BackgroundService:
    name: str
    port: int
    argv: list[str] = field(default_factory=list)
    state_dir: Path = LOCAL_DIR
    env: dict[str, str] = field(default_factory=dict, hash=False, compare=False, repr=False)
    port_setting: str = ""  # the environment variable that chooses the port, named in errors

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def running(self) -> bool:
        """Our process (the pid file's) is alive and was started on this port."""
        return self._recorded_port() == self.port and self._alive()

    def _alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def start(self, timeout: float = 30.0) -> BackgroundService:
        if self.healthy():
            if self.running():
                return self  # started earlier from this directory: reused
            # another checkout's service (its token differs: every call would get 401) or another program
            hint = f"; set {self.port_setting} to a free port" if self.port_setting else ""
            raise LocalStackError(f"port {self.port} on 127.0.0.1 already answers, but not with the {self.name} "
                                  f"started from {self.state_dir} (another checkout's, or another program): stop "
                                  f"it{hint}")
        if self._alive() and self._recorded_port() not in (None, self.port):
            self.stop()  # ours, started on the port the setting named before: not left running unowned
        make_private_dir(self.state_dir)
        log = open_private_log(self.logfile)
        env = {**os.environ, **self.env, "PYTHONPATH": str(PROJECT_ROOT)}
        try:
            process = subprocess.Popen(self.argv, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True, umask=PRIVATE_UMASK)
        finally:
            os.close(log)
        write_private(self.pidfile, f"{process.pid} {self.port}")
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {process.returncode}; see {self.logfile}")
            if time.monotonic() > deadline:
                process.terminate()
                raise RuntimeError(f"{self.name} did not answer on {self.url} within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def _recorded_port(self) -> int | None:
        """The port the pid file's process was started on ("<pid> <port>")."""
        try:
            return int(self.pidfile.read_text().split()[1])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        self.pidfile.unlink(missing_ok=True)


@dataclass(frozen=True)
class LocalStack:
    """The stack under `local_dir` (`.local/`; a test may use a directory of its own)."""

    pg: LocalPostgres = None  # type: ignore[assignment]  # set in __post_init__
    # the demo's fixed ports, or the environment's (two checkouts side by side set two of each)
    wms_port: int = field(default_factory=lambda: int(os.environ.get(WMS_PORT_SETTING, "18765")))
    webhook_port: int = field(default_factory=lambda: int(os.environ.get(WEBHOOK_PORT_SETTING, "18766")))
    wms_skus: int = 2000
    wms_seed: int = 7
    local_dir: Path = LOCAL_DIR

    def __post_init__(self) -> None:
        if self.pg is None:
            object.__setattr__(self, "pg", checkout_cluster(local_dir=self.local_dir))

    @property
    def token(self) -> str:
        """The WMS bearer token of this stack (random, made once, `.local/secrets/wms-token`)."""
        return wms_token(self.local_dir)

    @property
    def wms(self) -> BackgroundService:
        return BackgroundService("wms", self.wms_port, [
            sys.executable, "-m", "devstack.wms_service", "--host", "127.0.0.1", "--port",
            str(self.wms_port), "--skus", str(self.wms_skus), "--seed", str(self.wms_seed),
            "--token-file", str(wms_token_file(self.local_dir))], state_dir=self.local_dir,
            port_setting=WMS_PORT_SETTING)

    @property
    def webhook(self) -> BackgroundService:
        return BackgroundService("webhook", self.webhook_port, [
            sys.executable, "-m", "devstack.webhook_receiver", "--port", str(self.webhook_port),
            "--file", str(self.local_dir / "alerts.jsonl")], state_dir=self.local_dir,
            port_setting=WEBHOOK_PORT_SETTING)

    @property
    def shop_dsn(self) -> str:
        """The reference shop's database (`shop`): its schema only."""
        return self.pg.dsn()

    @property
    def stocksync_dsn(self) -> str:
        """stocksync's own database (`stocksync`): its migrations only."""
        return self.pg.dsn(STOCKSYNC_DATABASE)

    def databases(self) -> str:
        """The two databases, passwords masked, for a person to read."""
        return (f"shop {self.pg.safe_dsn()}, stocksync's own {self.pg.safe_dsn(STOCKSYNC_DATABASE)} "
                f"(password in {self.pg.password_file})")

    def start(self) -> LocalStack:
        self.pg.start()
        self.pg.create_database(STOCKSYNC_DATABASE)
        tighten(self.local_dir)
        self.wms.start()
        self.webhook.start()
        return self

    def stop(self) -> None:
        self.wms.stop()
        self.webhook.stop()
        self.pg.stop()

    def airflow_env(self, airflow_home: Path | None = None) -> dict[str, str]:
        """Environment for Airflow (dag.test, standalone) wired to this stack."""
        home = airflow_home or self.local_dir / "airflow"
        return airflow_env(home, shop_dsn=self.shop_dsn, stocksync_dsn=self.stocksync_dsn, wms_url=self.wms.url,
                           token=self.token, webhook_url=self.webhook.url,
                           jwt_secret=airflow_jwt_secret(self.local_dir))


def postgres_connection_json(dsn: str) -> str:
    """An Airflow Postgres connection (`AIRFLOW_CONN_<ID>` JSON) for a libpq URL."""
    import json
    from urllib.parse import urlparse

    url = urlparse(dsn)
    return json.dumps({"conn_type": "postgres", "host": url.hostname, "port": url.port,
                       "login": url.username or "postgres", "password": unquote(url.password or ""),
                       "schema": url.path.lstrip("/")})


def airflow_env(home: Path, *, shop_dsn: str, wms_url: str, token: str, webhook_url: str,
                stocksync_dsn: str | None = None, jwt_secret: str | None = None) -> dict[str, str]:
    """Airflow's configuration for a local run. The shop is the `stocksync_shop` connection; with
    `stocksync_dsn`, stocksync's own database is another one, `stocksync_db` (`stocksync_conn_id`),
    else the shop's database holds stocksync's schema too. The JWT secret is `jwt_secret`, else
    `$AIRFLOW__API_AUTH__JWT_SECRET`, else the one generated for this checkout: never a constant,
    since whoever knows it can sign themselves an admin token. Task logs are written owner-only
    (Airflow's default makes them group-writable and world-readable)."""
    import json
    from urllib.parse import urlparse

    wms = urlparse(wms_url)
    hook = urlparse(webhook_url)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret or os.environ.get("AIRFLOW__API_AUTH__JWT_SECRET")
        or airflow_jwt_secret(),
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS": "0o700",
        "AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS": "0o600",
        "PYTHONPATH": str(PROJECT_ROOT),
        # one zone on every screen: Airflow's default zone is the shop's (the nightly's schedule zone,
        # and the zone the Stock sync page and reports show); the UI's own picker is per browser
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": os.environ.get("AIRFLOW__CORE__DEFAULT_TIMEZONE") or shop_zone(),
        "AIRFLOW_CONN_STOCKSYNC_SHOP": postgres_connection_json(shop_dsn),
        "AIRFLOW_CONN_WMS_API": json.dumps({
            "conn_type": "http", "host": wms.hostname, "port": wms.port, "schema": wms.scheme, "password": token}),
        "AIRFLOW_CONN_STOCKSYNC_ALERTS": json.dumps({
            "conn_type": "http", "host": hook.hostname, "port": hook.port, "schema": hook.scheme}),
        **(stocksync_connection_env(stocksync_dsn) if stocksync_dsn else {}),
    }


def stocksync_connection_env(stocksync_dsn: str) -> dict[str, str]:
    """The settings that give stocksync a database of its own: the `stocksync_db` connection and
    `stocksync_conn_id` naming it."""
    return {f"AIRFLOW_CONN_{STOCKSYNC_CONN_ID.upper()}": postgres_connection_json(stocksync_dsn),
            "STOCKSYNC_STOCKSYNC_CONN_ID": STOCKSYNC_CONN_ID}


def without_stocksync_connection(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less the settings that would give stocksync a database of its own: for a process
    that runs the single-database layout whatever the shell that started it had configured (an
    inherited `stocksync_conn_id` would send its run records to another database)."""
    own = {f"AIRFLOW_CONN_{STOCKSYNC_CONN_ID.upper()}", "STOCKSYNC_STOCKSYNC_CONN_ID"}
    return {name: value for name, value in environ.items() if name not in own}


def shop_zone() -> str:
    """The shop's time zone from the project's settings (`shop_timezone`)."""
    from include.stocksync.config.settings import process_settings

    return process_settings().shop_timezone


# `airflow db migrate`, then `airflow pools set <arguments>`, through Airflow's own CLI entry point
# in one interpreter (each start of the `airflow` command costs a few seconds of imports); -P: the
# working directory is not put on sys.path, as it is not for the `airflow` command.
_MIGRATE_AND_SET_POOL = """
import sys
from airflow.__main__ import main
for argv in (["db", "migrate"], ["pools", "set", *sys.argv[1:]]):
    sys.argv = ["airflow", *argv]
    main()
"""


def migrate_airflow(env: dict[str, str]) -> None:
    """Create/upgrade Airflow's metadata DB (SQLite under AIRFLOW_HOME) and set the writer pool
    (`airflow db migrate`, `airflow pools set`). Idempotent."""
    home = make_private_dir(Path(env["AIRFLOW_HOME"]))
    tighten(home)
    # one writer at a time: the nightly sync's and the ops push's load tasks share this pool
    result = subprocess.run([sys.executable, "-P", "-c", _MIGRATE_AND_SET_POOL, WRITER_POOL, "1",
                             "stocksync: one shop writer at a time"], env={**os.environ, **env}, capture_output=True,
                            text=True, umask=PRIVATE_UMASK)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate / pools set failed:\n{result.stdout[-3000:]}\n"
                           f"{result.stderr[-3000:]}")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WmsProcess:
    """A WMS service subprocess owned by the caller (tests, benchmark); `stop()` ends it.
    The token goes to it in its environment (`STOCKSYNC_WMS_TOKEN`), not on its command line."""

    def __init__(self, port: int, token: str, *extra: str, skus: int = 50, seed: int = 1) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.wms_service", "--host", "127.0.0.1", "--port", str(port),
             "--skus", str(skus), "--seed", str(seed), *extra],
            cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), WMS_TOKEN_ENV: token},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, umask=PRIVATE_UMASK)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read() if self.process.stderr else ""
                raise RuntimeError(f"WMS service did not start: {error}")
            time.sleep(0.1)
        self.admin = WmsAdmin(self.url, token)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
