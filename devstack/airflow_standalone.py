"""`airflow standalone` as a managed subprocess: the whole Airflow 3 (API server with the UI,
scheduler, dag-processor, triggerer) on SQLite + LocalExecutor, for the local stack and the UI tests.

- It runs in its own process group (`start_new_session=True`) with the venv's `bin` first on
  PATH (standalone starts its parts as `airflow ...`), logging to `<AIRFLOW_HOME>/standalone.log`;
  `stop()` sends SIGTERM to the group and waits (SIGKILL after a timeout).
- The environment is `local_stack.airflow_env(...)` (connections to the shop DB, WMS and alert
  webhook) plus: the API server's host/port and base URL (the execution API URL the workers use is
  derived from it), free ports for the log servers (so two instances can run side by side),
  `AIRFLOW__CORE__PARALLELISM=4`, and the simple auth manager with one user `admin` (role admin)
  whose password is written beforehand to the passwords file
  (`[core] simple_auth_manager_passwords_file`, JSON `{"admin": "<password>"}`), so callers know it.
  An existing file's password is kept, so a restarted stack keeps its login.
- `start()` waits for `GET /api/v2/monitor/health` to answer with a healthy metadatabase, then
  creates the one-slot `stocksync_shop_writer` pool the load tasks run in (REST, unless it exists).
  Measured on this 2-core machine (Airflow 3.3.2): 9 s from launch to a healthy API on a fresh
  AIRFLOW_HOME (standalone creates the SQLite metadata DB itself) or an existing one; 11-12 s while a
  `dag.test()` runs alongside (the UI tests). `stop()` takes ~12 s: the triggerer shuts down
  gracefully in ~10 s after the rest.
- `token()` logs in with `POST /auth/token`; `api(method, path, json=...)` calls the REST API
  with that bearer token. Works as root (Airflow does not refuse it).
- `auth="fab"`: per-person accounts under Airflow's FAB auth manager instead of the one simple-auth
  login (`users`: username -> `admin` | `ops` | `viewer`, roles in include/stocksync/airflow/roles.py).
  `airflow standalone` always switches to the simple auth manager, so this mode runs the same
  parts itself (api-server, scheduler, dag-processor, triggerer: one process group, LocalExecutor
  on the SQLite DB) after migrating the metadata DB, FAB's tables, the roles and the accounts. Each
  account's password is random, kept in `fab_passwords.json` (0600) and reused on a restart;
  `passwords` has them, `login(username)` returns a client for one person. The first admin
  account is the one `token()`/`api()` use.
- Nothing in AIRFLOW_HOME is for other users (the metadata DB holds connections and run data,
  the logs may quote them): the home is 0700, the process group runs with umask 077, and files
  an older version left readable are tightened on launch. Secrets (JWT secret, connection
  passwords) reach Airflow through its environment, never its command line.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import requests

from devstack.local_secrets import PRIVATE_UMASK, make_private_dir, open_private_log, tighten, write_private
from devstack.local_stack import airflow_env, free_port
from include.stocksync.config.settings import PROJECT_ROOT, WRITER_POOL

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
AUTH_MODES = ("simple", "fab")
# the parts `airflow standalone` runs, started by us when it cannot be used (FAB auth)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_PATH = "/api/v2/monitor/health"


class AirflowStandaloneError(RuntimeError):
    """`airflow standalone` did not start, died, or refused a request."""


class AirflowStandalone:
    """One `airflow standalone` process group owned by the caller."""

    def __init__(self, home: Path, *, shop_dsn: str, wms_url: str, token: str, webhook_url: str,
                 stocksync_dsn: str | None = None, port: int = 8080, host: str = "127.0.0.1", username: str = "admin",
                 password: str | None = None,
                 extra_env: dict[str, str] | None = None, auth: str = "simple",
                 users: dict[str, str] | None = None) -> None:
        if auth not in AUTH_MODES:
            raise AirflowStandaloneError(f"auth {auth!r} is not one of {', '.join(AUTH_MODES)}")
        self.home = Path(home).resolve()
        self.port = port
        self.host = host
        self.auth = auth
        self.url = f"http://{host}:{port}"
        self.log_path = self.home / "standalone.log"
        self.passwords_file = self.home / ("fab_passwords.json" if auth == "fab" else
                                           "simple_auth_manager_passwords.json")
        self.users = dict(users or {}) if auth == "fab" else {username: "admin"}
        if auth == "fab":
            admins = [name for name, role in self.users.items() if role == "admin"]
            if not admins:
                raise AirflowStandaloneError("auth fab needs at least one admin account (users: name -> 'admin')")
            username = admins[0]
        self.username = username
        self.passwords = {name: self._existing_password(name) or secrets.token_urlsafe(16) for name in self.users}
        if password:
            self.passwords[username] = password
        self.password = self.passwords[username]
        self.startup_seconds: float | None = None
        self._launched = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        venv_bin = Path(sys.executable).parent
        self.airflow_bin = venv_bin / "airflow"
        self.env: dict[str, str] = {
            **os.environ,
            **airflow_env(self.home, shop_dsn=shop_dsn, stocksync_dsn=stocksync_dsn, wms_url=wms_url, token=token,
                          webhook_url=webhook_url),
            "PATH": os.pathsep.join([str(venv_bin), os.environ.get("PATH", "/usr/bin:/bin")]),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__PARALLELISM": "4",
            # a task's calls to the execution API (served by the one API server, next to the UI and
            # REST) wait up to 30 s instead of Airflow's 5: on a busy two-core machine the API server
            # can take longer than 5 s x 5 attempts, and the executor then fails a task that never ran
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER if auth == "fab" else SIMPLE_AUTH_MANAGER,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            **(extra_env or {}),
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def launch(self) -> AirflowStandalone:
        """Start the process group and return at once (see `wait_ready`)."""
        if self.process is not None and self.process.poll() is None:
            return self
        if not self.airflow_bin.exists():
            raise AirflowStandaloneError(f"{self.airflow_bin} not found: run `bash scripts/bootstrap.sh`")
        make_private_dir(self.home)
        tighten(self.home)
        self._write_password()
        self._launched = time.monotonic()
        argv = [str(self.airflow_bin), "standalone"]
        if self.auth == "fab":
            self._prepare_fab()
            # every part in our process group; the first one to exit ends the group's leader too
            argv = ["bash", "-c", " ".join(f"{shlex.quote(str(self.airflow_bin))} {part} &" for part in COMPONENTS)
                    + " wait -n; exit 1"]
        log = open_private_log(self.log_path)
        try:
            self.process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=self.env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, umask=PRIVATE_UMASK)
        finally:
            os.close(log)
        return self

    def wait_ready(self, timeout: float = 120.0) -> AirflowStandalone:
        """Wait until the API server answers its health check with a healthy metadatabase."""
        if self.process is None:
            raise AirflowStandaloneError("not launched")
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AirflowStandaloneError(
                    f"airflow standalone exited with code {self.process.returncode}:\n{self.log_tail()}")
            if self.healthy():
                self.startup_seconds = time.monotonic() - self._launched
                self.ensure_pool(WRITER_POOL, 1, "stocksync: one shop writer at a time")
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise AirflowStandaloneError(
                    f"Airflow did not answer {self.url}{HEALTH_PATH} within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def start(self, timeout: float = 120.0) -> AirflowStandalone:
        return self.launch().wait_ready(timeout)

    def healthy(self) -> bool:
        try:
            response = requests.get(f"{self.url}{HEALTH_PATH}", timeout=2)
        except requests.RequestException:
            return False
        if response.status_code != 200:
            return False
        try:
            return response.json().get("metadatabase", {}).get("status") == "healthy"
        except ValueError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group and wait for all of it; SIGKILL what is left after `timeout`.

        The standalone process exits at once; its triggerer takes ~10 s to shut down gracefully.
        """
        process = self.process
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process.poll()  # reap our direct child so it does not count as alive
            if not _group_alive(process.pid):
                break
            time.sleep(0.2)
        else:
            _signal_group(process.pid, signal.SIGKILL)
        process.wait(10)
        self.process = None
        self._token = None

    def __enter__(self) -> AirflowStandalone:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- REST ---------------------------------------------------------------------------------

    def token(self, refresh: bool = False) -> str:
        """A JWT for `username` from `POST /auth/token`."""
        if self._token is None or refresh:
            self._token = fetch_token(self.url, self.username, self.password)
        return self._token

    def login(self, username: str) -> ApiSession:
        """A REST client logged in as `username` (one of `users`)."""
        if username not in self.passwords:
            raise AirflowStandaloneError(f"no account {username!r}; accounts: {sorted(self.passwords)}")
        return ApiSession(self.url, fetch_token(self.url, username, self.passwords[username]))

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """Call `path` (e.g. `/api/v2/plugins`) with the bearer token; returns the response."""
        return ApiSession(self.url, self.token()).api(method, path, json, **kwargs)

    def ensure_pool(self, name: str, slots: int, description: str) -> None:
        """Create the pool unless it exists (an existing pool keeps its slots)."""
        response = self.api("POST", "/api/v2/pools", json={"name": name, "slots": slots,
                                                           "description": description})
        if response.status_code not in (200, 201, 409):
            raise AirflowStandaloneError(f"could not create pool {name}: {response.status_code} {response.text[:300]}")

    # -- helpers ------------------------------------------------------------------------------

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def _existing_password(self, username: str) -> str | None:
        try:
            value = json.loads(self.passwords_file.read_text()).get(username)
        except (FileNotFoundError, ValueError, AttributeError):
            return None
        return str(value) if value else None

    def _write_password(self) -> None:
        try:
            passwords = json.loads(self.passwords_file.read_text())
            if not isinstance(passwords, dict):
                passwords = {}
        except (FileNotFoundError, ValueError):
            passwords = {}
        passwords.update(self.passwords)
        write_private(self.passwords_file, json.dumps(passwords) + "\n")

    def _prepare_fab(self) -> None:
        """Metadata DB, FAB's tables, stocksync's roles and the accounts (what `airflow standalone`
        would have prepared for the simple auth manager)."""
        users_file = self.home / "fab_users.json"
        write_private(users_file, json.dumps({name: {"role": role, "password": self.passwords[name]}
                                              for name, role in self.users.items()}))
        steps = [[str(self.airflow_bin), "db", "migrate"], [str(self.airflow_bin), "fab-db", "migrate"],
                 [sys.executable, "-m", "include.stocksync.airflow.roles", "--users-file", str(users_file)]]
        try:
            for argv in steps:
                done = subprocess.run(argv, cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True,
                                      umask=PRIVATE_UMASK, check=False)
                if done.returncode != 0:
                    raise AirflowStandaloneError(f"{' '.join(argv[1:3])} failed ({done.returncode}):\n"
                                                 f"{(done.stdout + done.stderr)[-3000:]}")
        finally:
            users_file.unlink(missing_ok=True)


def fetch_token(url: str, username: str, password: str) -> str:
    """A JWT for `username` from Airflow's `POST /auth/token` (both auth managers answer it)."""
    response = requests.post(f"{url}/auth/token", timeout=10, json={"username": username, "password": password})
    if response.status_code not in (200, 201):
        raise AirflowStandaloneError(f"login of {username!r} failed: {response.status_code} {response.text[:300]}")
    return str(response.json()["access_token"])


class ApiSession:
    """The REST API as one logged-in person."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self._token = token

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}{path}", json=json, headers=headers, **kwargs)


class _ApiClient(Protocol):
    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response: ...


def wait_for_dags(client: _ApiClient, dag_ids: set[str], timeout: float = 120.0) -> None:
    """Return once the DAG processor has registered every DAG of `dag_ids` (a new standalone or
    Celery stack parses its DAG folder shortly after it starts); TimeoutError, with what is listed,
    when some are still missing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        listed = client.api("GET", "/api/v2/dags")  # a page holds 50 DAGs: ours are five
        if dag_ids <= {d["dag_id"] for d in listed.json().get("dags", [])}:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"DAGs {sorted(dag_ids)} not all registered after {timeout:.0f} s; "
                               f"listed: {listed.text[:500]}")
        time.sleep(0.25)


def wait_for_run(client: _ApiClient, dag_id: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """The DAG run once it has finished (success or failed), through the REST API of a standalone or
    Celery stack; TimeoutError when it is still going after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = client.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()
        except requests.Timeout:  # a busy API server answers late: that poll says nothing, the next may
            run = {"state": "unknown (the API server did not answer a poll in time)"}
        if run.get("state") in ("success", "failed"):
            return dict(run)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{dag_id} {run_id!r} still {run.get('state')} after {timeout:.0f} s")
        time.sleep(0.25)  # a finished run is seen soon after, at a few cheap GETs a second


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies waiting for a reaper do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
