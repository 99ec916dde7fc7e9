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
- Nothing in AIRFLOW_HOME is for other users (the metadata DB holds connections and run data,
  the logs may quote them): the home is 0700, the process group runs with umask 077, and files
  an older version left readable are tightened on launch. Secrets (JWT secret, connection
  passwords) reach Airflow through its environment, never its command line.
"""

from __future__ import annotations

import json
import os
import secrets
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
from include.stocksync.settings import PROJECT_ROOT, WRITER_POOL

SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
HEALTH_PATH = "/api/v2/monitor/health"


class AirflowStandaloneError(RuntimeError):
    """`airflow standalone` did not start, died, or refused a request."""


class AirflowStandalone:
    """One `airflow standalone` process group owned by the caller."""

    def __init__(self, home: Path, *, shop_dsn: str, wms_url: str, token: str, webhook_url: str,
                 port: int = 8080, host: str = "127.0.0.1", username: str = "admin", password: str | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(home).resolve()
        self.port = port
        self.host = host
        self.username = username
        self.url = f"http://{host}:{port}"
        self.log_path = self.home / "standalone.log"
        self.passwords_file = self.home / "simple_auth_manager_passwords.json"
        self.password = password or self._existing_password() or secrets.token_urlsafe(16)
        self.startup_seconds: float | None = None
        self._launched = 0.0
        self.process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        venv_bin = Path(sys.executable).parent
        self.airflow_bin = venv_bin / "airflow"
        self.env: dict[str, str] = {
            **os.environ,
            **airflow_env(self.home, shop_dsn=shop_dsn, wms_url=wms_url, token=token, webhook_url=webhook_url),
            "PATH": os.pathsep.join([str(venv_bin), os.environ.get("PATH", "/usr/bin:/bin")]),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
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
        log = open_private_log(self.log_path)
        self._launched = time.monotonic()
        try:
            self.process = subprocess.Popen([str(self.airflow_bin), "standalone"], cwd=PROJECT_ROOT, env=self.env,
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
            response = requests.post(f"{self.url}/auth/token", timeout=10,
                                     json={"username": self.username, "password": self.password})
            if response.status_code not in (200, 201):
                raise AirflowStandaloneError(f"login failed: {response.status_code} {response.text[:300]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        """Call `path` (e.g. `/api/v2/plugins`) with the bearer token; returns the response."""
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}{path}", json=json, headers=headers, **kwargs)

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

    def _existing_password(self) -> str | None:
        try:
            value = json.loads(self.passwords_file.read_text()).get(self.username)
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
        passwords[self.username] = self.password
        write_private(self.passwords_file, json.dumps(passwords) + "\n")


class _ApiClient(Protocol):
    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response: ...


def wait_for_run(client: _ApiClient, dag_id: str, run_id: str, timeout: float = 180.0) -> dict[str, Any]:
    """The DAG run once it has finished (success or failed), through the REST API of a standalone or
    Celery stack; TimeoutError when it is still going after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()
        if run.get("state") in ("success", "failed"):
            return dict(run)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{dag_id} {run_id!r} still {run.get('state')} after {timeout:.0f} s")
        time.sleep(1)


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
