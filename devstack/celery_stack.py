"""The CeleryExecutor topology of docker-compose.yaml, run natively on this machine (no Docker).

    bash scripts/stack.sh --executor celery [--port 8080] [--redis-port 16379] [--availability-port 18767]

Why: `airflow standalone` (LocalExecutor) runs every task on the scheduler's machine, so it
cannot show what a distributed executor changes: tasks of one run landing on different
workers, and a worker dying under a task. This module starts the same parts as
`docker-compose.yaml`, from Debian and PyPI packages:

- Redis (Debian's `redis-server`), the Celery broker, on 127.0.0.1 with a password. The password
  is made once per checkout (`.local/secrets/redis-password`, 0600) and reaches the server in its
  config file (0600, `<home>/redis/redis.conf`), never its command line, where every local user
  could read it with `ps`; Airflow gets it inside the broker URL in its environment;
- Airflow's metadata database (and the Celery result backend) as a database of a project-managed
  PostgreSQL cluster (devstack/local_pg.py), reached with that cluster's password;
- `airflow api-server`, `scheduler`, `dag-processor`, `triggerer`, and two `airflow celery
  worker` processes with distinct Celery node names (`--celery-hostname worker-a@%h`); each
  worker's task instances record `worker-a@<fqdn>` as their hostname (devstack/worker_hostname.py),
  so who ran what is visible over REST;
- the availability service (devstack/availability_local.py); the shop DB, the WMS simulator
  and the webhook receiver are the caller's (LocalStack for the command line, the test
  fixtures for the tests).

Each process runs in its own session with umask 077 and logs to `<home>/logs/<name>.log`
(0600). `stop()` ends everything `start()` started, including task processes Airflow put in
process groups of their own; `kill_worker()` SIGKILLs one worker and every process under it,
as a lost machine would.

What the stack runs is declared once, in `CORE_PROCESSES`, `worker_process()` and
`process_env()`; `topology()` exports it (services, executor, each process's environment keys,
connection ids, broker and result backend, pool, Airflow version) and
`tests/unit/test_compose_matches_native.py` checks docker-compose.yaml against it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests

from devstack.airflow_standalone import HEALTH_PATH, SIMPLE_AUTH_MANAGER
from devstack.availability_process import AvailabilityProcess
from devstack.local_pg import LocalPostgres
from devstack.local_secrets import (
    LOCAL_DIR,
    PRIVATE_UMASK,
    airflow_jwt_secret,
    make_private_dir,
    open_private_log,
    read_or_create_secret,
    secrets_dir,
    tighten,
    write_private,
)
from devstack.local_stack import airflow_env, free_port
from devstack.worker_hostname import WORKER_NAME_ENV
from include.stocksync.config.settings import PROJECT_ROOT, WRITER_POOL

EXECUTOR = "CeleryExecutor"
# Airflow's Celery configuration plus the libraries each worker preloads before forking its pool
CELERY_CONFIG_OPTIONS = "include.stocksync.airflow.celery_config.CELERY_CONFIG"
STACK_HOME = LOCAL_DIR / "airflow-celery"
METADATA_DB = "airflow_celery"
DEFAULT_WORKERS = ("worker-a", "worker-b")
DEFAULT_API_PORT = 8080
DEFAULT_REDIS_PORT = 16379
POOL_DESCRIPTION = "stocksync: one shop writer at a time"
HOSTNAME_CALLABLE = "devstack.worker_hostname.hostname"
# How Airflow notices a lost worker, as docker-compose.yaml ships it (and stocksync.yaml's
# operations.airflow_* entries say; docs/operations.md, "A lost worker"): a running task whose
# supervisor stopped heartbeating (every 5 s, [workers] min_heartbeat_interval) for 30 s is failed
# and retried, checked every 5 s. Airflow's default (300 s) equals the whole freeze budget.
AIRFLOW_TIMING = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "5",
}
# A process of the stack that dies is started again after 1, 2, 4 ... up to this many seconds; the
# delay starts over once it has stayed up for RESTART_RESET_SECONDS.
RESTART_MAX_DELAY_SECONDS = 30.0
RESTART_RESET_SECONDS = 60.0


class CeleryStackError(RuntimeError):
    """A part of the stack did not start, died, or refused a request."""


@dataclass(frozen=True)
class AirflowProcess:
    """One Airflow process of the topology: `airflow <argv>`, and its docker-compose.yaml service."""

    name: str
    argv: tuple[str, ...]
    compose_service: str
    worker: bool = False
    program: str | None = None  # None: the virtualenv's `airflow`

    def command(self) -> list[str]:
        return [self.program or str(Path(sys.executable).with_name("airflow")), *self.argv]


CORE_PROCESSES = (
    AirflowProcess("api-server", ("api-server",), "airflow-apiserver"),
    AirflowProcess("scheduler", ("scheduler",), "airflow-scheduler"),
    AirflowProcess("dag-processor", ("dag-processor",), "airflow-dag-processor"),
    AirflowProcess("triggerer", ("triggerer",), "airflow-triggerer"),
)


def worker_process(name: str, concurrency: int = 2) -> AirflowProcess:
    """A Celery worker; its node name (`name@host`) is what `celery inspect` and Flower show.
    Mingle and gossip (workers syncing with each other) are off: Airflow uses neither, and on two
    cores they only slow the start."""
    return AirflowProcess(name, ("celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency",
                                 str(concurrency), "--without-mingle", "--without-gossip"), "airflow-worker",
                          worker=True)


# --- the environment of every Airflow process ------------------------------------------------------

@dataclass(frozen=True)
class Wiring:
    """Where everything is: what `process_env` turns into Airflow's configuration."""

    home: Path
    shop_dsn: str
    wms_url: str
    token: str
    webhook_url: str
    metadata_url: str  # SQLAlchemy URL of Airflow's metadata DB
    result_backend: str  # Celery's result backend (the same database)
    broker_url: str  # redis://:<password>@127.0.0.1:<port>/0
    api_port: int
    jwt_secret: str
    fernet_key: str
    stocksync_dsn: str | None = None  # stocksync's own database (None: the shop's holds its schema)
    username: str = "admin"
    reports_dir: Path = PROJECT_ROOT / "reports"
    api_host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"


def process_env(wiring: Wiring, process: AirflowProcess, log_server_port: int = 0) -> dict[str, str]:
    """The Airflow configuration of one process (secrets included: it goes into the environment,
    never a command line). The same keys docker-compose.yaml sets in `x-airflow-common`, plus
    what several processes on one machine need: distinct log-server ports, the API server's
    address, and each worker's name."""
    env = airflow_env(wiring.home, shop_dsn=wiring.shop_dsn, stocksync_dsn=wiring.stocksync_dsn,
                      wms_url=wiring.wms_url, token=wiring.token, webhook_url=wiring.webhook_url,
                      jwt_secret=wiring.jwt_secret)
    venv_bin = Path(sys.executable).parent
    env.update({
        "PATH": os.pathsep.join([str(venv_bin), os.environ.get("PATH", "/usr/bin:/bin")]),
        "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": wiring.metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": wiring.broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": wiring.result_backend,
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{wiring.api_url}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": wiring.fernet_key,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{wiring.username}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(wiring.passwords_file),
        "AIRFLOW__API__HOST": wiring.api_host,
        "AIRFLOW__API__PORT": str(wiring.api_port),
        "AIRFLOW__API__BASE_URL": wiring.api_url,
        "AIRFLOW__API__WORKERS": "1",
        "STOCKSYNC_REPORTS_DIR": str(wiring.reports_dir),
        **AIRFLOW_TIMING,
    })
    if process.worker:
        env[WORKER_NAME_ENV] = process.name
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_server_port)
    elif process.name == "triggerer":
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(log_server_port)
    env.update(wiring.extra_env)
    return env


def topology(workers: tuple[str, ...] = DEFAULT_WORKERS) -> dict[str, Any]:
    """What the native stack runs, as data (for tests/unit/test_compose_matches_native.py).

    Built from the same declarations `CeleryStack` starts from, with placeholder values where a
    running stack has ports and secrets."""
    wiring = Wiring(home=Path("/placeholder/home"), shop_dsn="postgresql://shop:pw@127.0.0.1:1/shop",
                    stocksync_dsn="postgresql://stocksync:pw@127.0.0.1:1/stocksync",
                    wms_url="http://127.0.0.1:2", token="token", webhook_url="http://127.0.0.1:3",
                    metadata_url=metadata_url("pw", 1, METADATA_DB),
                    result_backend=result_backend("pw", 1, METADATA_DB),
                    broker_url=LocalRedis.url_for("pw", 4), api_port=5, jwt_secret="jwt", fernet_key="fernet")
    processes = [*CORE_PROCESSES, *(worker_process(name) for name in workers)]
    envs = {p.name: process_env(wiring, p, 6) for p in processes}
    connections = {}
    for env in envs.values():
        for key, value in env.items():
            if key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                connections[key.removeprefix("AIRFLOW_CONN_").lower()] = {
                    "conn_type": conn["conn_type"], "has_password": bool(conn.get("password"))}
    return {
        "executor": EXECUTOR,
        "airflow_version": metadata.version("apache-airflow"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "processes": {p.name: {"argv": list(p.argv), "compose_service": p.compose_service, "worker": p.worker,
                               "env": envs[p.name]} for p in processes},
        "connections": connections,
        "broker_url": wiring.broker_url,
        "result_backend": wiring.result_backend,
        "pool": {"name": WRITER_POOL, "slots": 1},
        # the parts that are not Airflow, by their docker-compose.yaml names
        "services": ["redis", "airflow-db", "shop-db", "wms", "webhook", "availability"],
        "availability_module": "include.stocksync.availability",
    }


def metadata_url(password: str, port: int, database: str) -> str:
    return f"postgresql+psycopg2://postgres:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


def result_backend(password: str, port: int, database: str) -> str:
    return f"db+postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/{database}"


def fernet_key(local_dir: Path = LOCAL_DIR) -> str:
    """Airflow's Fernet key for this checkout: 32 bytes (URL-safe base64) derived from a random
    secret made once (`.local/secrets/airflow-fernet-secret`), so variables and connection
    passwords Airflow encrypts stay readable across restarts."""
    secret = read_or_create_secret(secrets_dir(local_dir) / "airflow-fernet-secret", 32)
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()).decode()


# --- Redis ---------------------------------------------------------------------------------------

class LocalRedis:
    """Debian's redis-server on 127.0.0.1:`port`, password from `.local/secrets/redis-password`,
    no persistence (the broker's queue is rebuilt by the scheduler after a restart)."""

    def __init__(self, directory: Path, port: int, local_dir: Path = LOCAL_DIR) -> None:
        self.directory = directory
        self.port = port
        self.password = read_or_create_secret(secrets_dir(local_dir) / "redis-password", 32)
        self.config = directory / "redis.conf"
        self.logfile = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def url_for(password: str, port: int, db: int = 0) -> str:
        return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for(self.password, self.port)

    def ping(self) -> bool:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # no client-side retries: the caller polls, and a refusal must show at once
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1,
                             socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def start(self, timeout: float = 20.0) -> LocalRedis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise CeleryStackError("redis-server not found: run `bash scripts/bootstrap.sh` (installs Debian's "
                                   "redis-server) or `apt-get install -y redis-server`")
        if _port_open(self.port):
            raise CeleryStackError(f"port {self.port} on 127.0.0.1 is taken; choose another Redis port")
        make_private_dir(self.directory)
        write_private(self.config, "\n".join([
            "# written by devstack/celery_stack.py (0600: it holds the password)",
            "bind 127.0.0.1",
            f"port {self.port}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f"dir {self.directory}",
            "daemonize no",
            'save ""',
            "appendonly no",
            'logfile ""',
        ]) + "\n")
        log = open_private_log(self.logfile)
        try:
            self.process = subprocess.Popen([binary, str(self.config)], cwd=self.directory, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            umask=PRIVATE_UMASK)
        finally:
            os.close(log)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None:
                raise CeleryStackError(f"redis-server exited with code {self.process.returncode}:\n"
                                       f"{_tail(self.logfile)}")
            if time.monotonic() > deadline:
                self.stop()
                raise CeleryStackError(f"redis-server did not answer on port {self.port} within {timeout:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            _terminate([self.process.pid], timeout)
            self.process.wait(5)
            self.process = None


# --- the stack -------------------------------------------------------------------------------------

@dataclass
class Restart:
    name: str
    exit_code: int
    at: float  # time.time()
    after_delay: float


@dataclass
class _Watch:
    started_at: float  # time.monotonic()
    died_at: float | None = None
    delay: float = 0.0

    def next_delay(self) -> float:
        return min(max(self.delay * 2, 1.0), RESTART_MAX_DELAY_SECONDS)


@dataclass
class KilledWorker:
    name: str
    pids: list[int]
    killed_at: float  # time.time()


class CeleryStack:
    """The whole Airflow part of the topology, owned by the caller. Not reused across calls: a
    stack is started and stopped by the same object (`with CeleryStack(...) as stack:`)."""

    def __init__(self, home: Path, *, pg: LocalPostgres, shop_dsn: str, wms_url: str, token: str,
                 webhook_url: str, stocksync_dsn: str | None = None, metadata_db: str = METADATA_DB,
                 fresh_metadata: bool = False,
                 api_port: int | None = None, redis_port: int | None = None,
                 workers: tuple[str, ...] = DEFAULT_WORKERS, worker_concurrency: int = 2,
                 availability_port: int | None = None, local_dir: Path = LOCAL_DIR, username: str = "admin",
                 reports_dir: Path | None = None, extra_env: dict[str, str] | None = None,
                 drop_env: tuple[str, ...] = ()) -> None:
        self.home = Path(home).resolve()
        self.pg = pg
        self.metadata_db = metadata_db
        self.fresh_metadata = fresh_metadata
        self.local_dir = local_dir
        self.logs = self.home / "logs"
        self.redis = LocalRedis(self.home / "redis", redis_port or free_port(), local_dir)
        self.wiring = Wiring(
            home=self.home, shop_dsn=shop_dsn, stocksync_dsn=stocksync_dsn, wms_url=wms_url, token=token,
            webhook_url=webhook_url, metadata_url=metadata_url(pg.password, pg.port, metadata_db),
            result_backend=result_backend(pg.password, pg.port, metadata_db),
            broker_url=self.redis.url, api_port=api_port or free_port(), jwt_secret=airflow_jwt_secret(local_dir),
            fernet_key=fernet_key(local_dir), username=username,
            reports_dir=reports_dir or PROJECT_ROOT / "reports", extra_env=dict(extra_env or {}))
        self.drop_env = frozenset(drop_env)  # variables of the caller's environment the stack does not inherit
        self.processes = [*CORE_PROCESSES, *(worker_process(name, worker_concurrency) for name in workers)]
        self.workers = tuple(workers)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.availability: AvailabilityProcess | None = None
        if availability_port is not None:
            from devstack.availability_local import local_availability

            self.availability = local_availability(shop_dsn, stocksync_dsn=stocksync_dsn, port=availability_port,
                                                   local_dir=local_dir)
        self.password = self._existing_password() or read_or_create_secret(
            secrets_dir(local_dir) / "airflow-celery-admin-password", 16)
        self.startup_seconds: float | None = None
        self._token: str | None = None
        self.log_server_ports: dict[str, int] = {}
        self.restarts: list[Restart] = []
        self._watch: dict[str, _Watch] = {}
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.wiring.api_url

    @property
    def username(self) -> str:
        return self.wiring.username

    def env(self, process: AirflowProcess, log_server_port: int = 0) -> dict[str, str]:
        """The caller's environment (so `AIRFLOW__...` overrides still reach Airflow) without any
        connection of its own: the stack's processes talk only to the services it was given."""
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith("AIRFLOW_CONN_") and k not in self.drop_env}
        return {**inherited, **process_env(self.wiring, process, log_server_port)}

    def start(self, timeout: float = 240.0) -> CeleryStack:
        """Redis, the metadata DB (migrated), every Airflow process, the availability service; returns
        once the API server reports a healthy metadata DB, scheduler, DAG processor and triggerer,
        every worker answers a Celery ping, and the writer pool exists."""
        started = time.monotonic()
        if _port_open(self.wiring.api_port):
            raise CeleryStackError(f"port {self.wiring.api_port} on 127.0.0.1 is taken (another stack?)")
        make_private_dir(self.home)
        make_private_dir(self.logs)
        tighten(self.home)
        reap_leftovers(self.pidfile)
        try:
            self.redis.start()
            self._record_pid("redis", self.redis.process)
            if self.fresh_metadata:
                self.pg.drop_database(self.metadata_db)
            self.pg.create_database(self.metadata_db)
            self._migrate()
            self._write_password()
            self.launch()
            if self.availability is not None:
                self.availability.start()
            self.wait_healthy(timeout - (time.monotonic() - started))
            self.ensure_pool(WRITER_POOL, 1, POOL_DESCRIPTION)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _migrate(self) -> None:
        airflow = Path(sys.executable).with_name("airflow")
        log = open_private_log(self.logs / "db-migrate.log")
        try:
            result = subprocess.run([str(airflow), "db", "migrate"], cwd=PROJECT_ROOT, env=self.env(CORE_PROCESSES[1]),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    umask=PRIVATE_UMASK, timeout=600)
        finally:
            os.close(log)
        if result.returncode != 0:
            raise CeleryStackError(f"airflow db migrate failed:\n{_tail(self.logs / 'db-migrate.log')}")

    def _launch(self, process: AirflowProcess, log_server_port: int) -> None:
        self.log_server_ports[process.name] = log_server_port
        log = open_private_log(self.logs / f"{process.name}.log")
        try:
            self.running[process.name] = subprocess.Popen(
                process.command(), cwd=PROJECT_ROOT, env=self.env(process, log_server_port),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                umask=PRIVATE_UMASK)
        finally:
            os.close(log)
        self._record_pid(process.name, self.running[process.name])
        self._watch[process.name] = _Watch(time.monotonic())

    # -- supervision: one dead process is restarted, the rest keep running -----------------------

    def supervise_once(self, now: float | None = None) -> list[Restart]:
        """Start again every process of the stack that died (Redis, an Airflow process, the
        availability service), each after its own backoff (1, 2, 4 ... RESTART_MAX_DELAY_SECONDS s,
        back to 1 s once it stayed up RESTART_RESET_SECONDS); the others are not touched. Returns
        the restarts done now. What a process manager or compose's `restart:` policy does."""
        now = time.monotonic() if now is None else now
        done = []
        for name, code in self._exited().items():
            watch = self._watch.setdefault(name, _Watch(now))
            if watch.died_at is None:
                up = now - watch.started_at
                watch.died_at, watch.delay = now, 1.0 if up >= RESTART_RESET_SECONDS else watch.next_delay()
                print(f"stocksync: {name} exited with code {code} after {up:.0f}s; starting it again in "
                      f"{watch.delay:.0f}s (log {self.logs / (name + '.log')})", file=sys.stderr, flush=True)
            if now - watch.died_at < watch.delay or self._stopping.is_set():
                continue
            try:
                self._restart(name)
            except Exception as exc:  # tried again after a longer delay
                watch.died_at, watch.delay = now, watch.next_delay()
                print(f"stocksync: starting {name} again failed ({exc}); next try in {watch.delay:.0f}s",
                      file=sys.stderr, flush=True)
                continue
            self._watch[name] = _Watch(time.monotonic(), delay=watch.delay)
            done.append(Restart(name, code, time.time(), watch.delay))
        self.restarts += done
        return done

    def _exited(self) -> dict[str, int]:
        exited = self.dead()
        if self.redis.process is not None and (code := self.redis.process.poll()) is not None:
            exited["redis"] = code
        if self.availability is not None and self.availability.process is not None \
                and (code := self.availability.process.poll()) is not None:
            exited["availability"] = code
        return exited

    def _restart(self, name: str) -> None:
        if name == "redis":
            self.redis.process = None
            self.redis.start()
            self._record_pid("redis", self.redis.process)
        elif name == "availability":
            assert self.availability is not None
            self.availability.stop()
            self.availability.start()
        else:
            process = next(p for p in self.processes if p.name == name)
            self._launch(process, self.log_server_ports.get(name, 0))

    def launch(self) -> None:
        """Start every process of `self.processes` (each worker and the triggerer on a log-server port
        of its own)."""
        for process in self.processes:
            self._launch(process, free_port() if process.worker or process.name == "triggerer" else 0)

    def start_supervisor(self, every: float = 1.0) -> CeleryStack:
        """Supervise in a background thread until `stop()` (the tests; the command line loops itself)."""
        def loop() -> None:
            while not self._stopping.wait(every):
                self.supervise_once()

        self._supervisor = threading.Thread(target=loop, name="celery-stack-supervisor", daemon=True)
        self._supervisor.start()
        return self

    @property
    def pidfile(self) -> Path:
        return self.home / "pids.json"

    def _record_pid(self, name: str, process: subprocess.Popen[bytes] | None) -> None:
        """Remember what was started (pid and start time), so the next `start()` can end what a
        crashed or SIGKILLed owner left running (`reap_leftovers`)."""
        import psutil

        if process is None:
            return
        try:
            recorded = json.loads(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            recorded = {}
        try:
            recorded[name] = {"pid": process.pid, "started": psutil.Process(process.pid).create_time()}
        except psutil.NoSuchProcess:
            return
        write_private(self.pidfile, json.dumps(recorded) + "\n")

    def dead(self) -> dict[str, int]:
        """Processes of the stack that exited (name -> exit code); a killed worker counts."""
        return {name: code for name, proc in self.running.items() if (code := proc.poll()) is not None}

    def health(self) -> dict[str, str]:
        """The API server's view of the metadata DB, scheduler, DAG processor and triggerer."""
        try:
            response = requests.get(f"{self.url}{HEALTH_PATH}", timeout=3)
            body = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return {}
        return {part: str((body.get(part) or {}).get("status")) for part in
                ("metadatabase", "scheduler", "dag_processor", "triggerer")}

    def ping_workers(self, timeout: float = 2.0) -> set[str]:
        """Names of the workers answering a Celery ping over the broker (`worker-a`, ...): the
        replies within `timeout`, or as soon as every worker of the stack has answered."""
        from celery import Celery

        app = Celery("stocksync-ping", broker=self.redis.url, set_as_current=False)
        try:
            replies = app.control.ping(timeout=timeout, limit=len(self.workers))
        finally:
            app.close()
        return {node.split("@", 1)[0] for reply in replies for node in reply}

    def wait_healthy(self, timeout: float = 180.0, workers: tuple[str, ...] | None = None) -> CeleryStack:
        wanted = set(self.workers if workers is None else workers)
        deadline = time.monotonic() + timeout
        while True:
            dead = {name: code for name, code in self.dead().items() if name in wanted or name not in self.workers}
            if dead:
                name = next(iter(dead))
                raise CeleryStackError(f"{name} exited with code {dead[name]}:\n{self.log_tail(name)}")
            health = self.health()
            if health and all(status == "healthy" for status in health.values()) and self.ping_workers() >= wanted:
                return self
            if time.monotonic() > deadline:
                raise CeleryStackError(f"the Celery stack is not healthy after {timeout:.0f}s: API health {health}, "
                                       f"workers answering {sorted(self.ping_workers())}; logs in {self.logs}")
            time.sleep(0.5)

    def kill_worker(self, name: str) -> KilledWorker:
        """SIGKILL worker `name` and every process under it (its pool, the task supervisors and
        the task processes, which Airflow puts in process groups of their own): what a worker
        machine that loses power leaves behind. Its database connections drop with it."""
        import psutil

        process = self.running[name]
        root = psutil.Process(process.pid)
        victims = [root, *root.children(recursive=True)]
        killed_at = time.time()
        for victim in victims:
            try:
                victim.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=10)
        process.wait(5)
        return KilledWorker(name, [v.pid for v in victims], killed_at)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every process the stack started (and what runs under it), SIGKILL what is left
        after `timeout`, then Redis. Safe to call twice."""
        self._stopping.set()  # nothing is started again from here on
        if self._supervisor is not None:
            self._supervisor.join(timeout=60)
            self._supervisor = None
        if self.availability is not None:
            self.availability.stop()
        pids = [proc.pid for proc in self.running.values() if proc.poll() is None]
        _terminate(pids, timeout)
        for proc in self.running.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.running.clear()
        self.redis.stop()
        self.pidfile.unlink(missing_ok=True)
        self._token = None

    def __enter__(self) -> CeleryStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log_tail(self, name: str, chars: int = 4000) -> str:
        return _tail(self.logs / f"{name}.log", chars)

    # -- REST -----------------------------------------------------------------------------------

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            response = requests.post(f"{self.url}/auth/token", timeout=10,
                                     json={"username": self.username, "password": self.password})
            if response.status_code not in (200, 201):
                raise CeleryStackError(f"login failed: {response.status_code} {response.text[:300]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, f"{self.url}{path}", json=json, headers=headers, **kwargs)

    def ensure_pool(self, name: str, slots: int, description: str) -> None:
        response = self.api("POST", "/api/v2/pools", json={"name": name, "slots": slots, "description": description})
        if response.status_code not in (200, 201, 409):
            raise CeleryStackError(f"could not create pool {name}: {response.status_code} {response.text[:300]}")

    def _existing_password(self) -> str | None:
        try:
            value = json.loads(self.wiring.passwords_file.read_text()).get(self.username)
        except (FileNotFoundError, ValueError, AttributeError):
            return None
        return str(value) if value else None

    def _write_password(self) -> None:
        write_private(self.wiring.passwords_file, json.dumps({self.username: self.password}) + "\n")


def reap_leftovers(pidfile: Path, timeout: float = 30.0) -> list[int]:
    """End the processes a previous stack in the same home recorded and left running (its owner
    was killed before `stop()`). A pid counts only if its start time is the recorded one, so a pid
    the system has since given to another program is never touched."""
    import psutil

    try:
        recorded = json.loads(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return []
    pids = []
    for entry in recorded.values():
        try:
            if abs(psutil.Process(int(entry["pid"])).create_time() - float(entry["started"])) < 0.01:
                pids.append(int(entry["pid"]))
        except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
            continue
    if pids:
        print(f"stocksync: ending {len(pids)} process(es) a previous Celery stack left running", file=sys.stderr)
        _terminate(pids, timeout)
    pidfile.unlink(missing_ok=True)
    return pids


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return f"(no log at {path})"


def _terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM each process and its descendants; SIGKILL whatever still runs after `timeout`."""
    import psutil

    victims: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            victims += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for victim in victims:
        try:
            victim.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(victims, timeout=timeout)
    for victim in alive:
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


# --- `scripts/stack.sh --executor celery` ----------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    """The command line's celery variant (devstack/stack_cli.py parses the options)."""
    from devstack.availability_local import describe
    from devstack.cli import DAG_ID, ensure_seeded
    from devstack.local_secrets import wms_token_file
    from devstack.local_stack import LocalStack
    from devstack.stack_cli import _interrupt
    from include.stocksync.sync.pipeline import apply_schema

    for port, what in ((args.port, "--port"), (args.redis_port, "--redis-port"),
                       (args.availability_port, "--availability-port")):
        if _port_open(port):
            print(f"stocksync: port {port} is already in use (another stack running?); choose another with {what}",
                  file=sys.stderr)
            return 2
    local = LocalStack(wms_skus=args.skus, wms_seed=args.seed).start()
    apply_schema(local.shop_dsn, local.stocksync_dsn)
    seeded = ensure_seeded(local, args.skus, args.seed, reseed=args.reseed)
    print(f"stocksync: PostgreSQL {local.databases()}, "
          f"WMS {local.wms.url} (token in {wms_token_file()}), alert webhook {local.webhook.url}")
    print("stocksync: demo data " + (f"seeded ({args.skus} SKUs, seed {args.seed})" if seeded else "already seeded"))
    stack = CeleryStack(STACK_HOME, pg=local.pg, shop_dsn=local.shop_dsn, stocksync_dsn=local.stocksync_dsn,
                        wms_url=local.wms.url, token=local.token,
                        webhook_url=local.webhook.url, api_port=args.port, redis_port=args.redis_port,
                        availability_port=args.availability_port)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    print(f"stocksync: starting Redis, Airflow (CeleryExecutor, workers {', '.join(stack.workers)}) and the "
          f"availability service (logs in {stack.logs}) ...", flush=True)
    code = 0
    try:
        stack.start(timeout=args.timeout)
        assert stack.availability is not None
        print("\n".join([
            "",
            f"Airflow (CeleryExecutor) is up after {stack.startup_seconds:.0f}s",
            f"  URL          {stack.url}/",
            f"  username     {stack.username}",
            f"  password     {stack.password}",
            f"  Stock sync   {stack.url}/stocksync/",
            f"  DAG          {DAG_ID} (paused when new: unpause it or trigger it in the UI)",
            f"  Workers      {', '.join(f'{w}@<host>' for w in stack.workers)} (Redis 127.0.0.1:{stack.redis.port}, "
            f"password in {secrets_dir() / 'redis-password'})",
            *describe(stack.availability),
            "",
            "A process that dies is started again (with backoff); the others keep running.",
            "Press Ctrl-C to stop Airflow, Redis and the availability service. PostgreSQL, the WMS and the",
            "webhook receiver keep running; stop them with: PYTHONPATH=. .venv/bin/python -m devstack.cli stop",
        ]), flush=True)
        while True:  # until Ctrl-C / SIGTERM: a process that dies is started again, the rest keep running
            for restart in stack.supervise_once():
                print(f"stocksync: {restart.name} started again", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstocksync: stopping the Celery stack ...", flush=True)
    except CeleryStackError as exc:
        print(f"stocksync: {exc}", file=sys.stderr)
        code = 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()
    print("stocksync: the Celery stack stopped. PostgreSQL, WMS and webhook are still running "
          "(PYTHONPATH=. .venv/bin/python -m devstack.cli stop ends them).")
    return code
