"""docker-compose.yaml and the native Celery stack (devstack/celery_stack.py) must describe the
same deployment.

The Celery integration tests run the native stack (no Docker on the CI machines), so they only
vouch for docker-compose.yaml as long as both run the same thing: the same Airflow processes, the
CeleryExecutor in every one of them, the same connection ids, a broker and a result backend that
need a password, the Airflow version requirements.txt pins (the Dockerfile's FROM tag and the
image tag), the one-slot writer pool the DAGs' load tasks need, and the availability service.
Compose is read as data (PyYAML); the native side is `celery_stack.topology()`, built from the
declarations the stack starts from. The checker runs on altered copies too, so a checker that
accepts everything fails.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import celery_stack
from devstack.local_pg import LocalPostgres
from devstack.worker_hostname import WORKER_NAME_ENV, hostname
from include.stocksync.config.settings import WRITER_POOL

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
REQUIREMENTS = ROOT / "requirements.txt"


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def head(argv: list[str]) -> str:
    """The Airflow subcommand: `scheduler`, `celery worker`..."""
    return " ".join(argv[:2]) if argv[:1] == ["celery"] else (argv[0] if argv else "")


def airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run the Airflow image's entrypoint (`airflow <command>`): the others
    (simulators, init, availability) override the entrypoint."""
    image = compose["x-airflow-common"]["image"]
    return {name: svc for name, svc in compose["services"].items()
            if svc.get("image") == image and "entrypoint" not in svc}


def connections(env: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for key, value in env.items():
        if key.startswith("AIRFLOW_CONN_"):
            conn = json.loads(str(value))
            found[key.removeprefix("AIRFLOW_CONN_").lower()] = {"conn_type": conn["conn_type"],
                                                                 "has_password": bool(conn.get("password"))}
    return found


def url_has_password(url: str) -> bool:
    match = re.match(r"[a-z0-9+]+://[^/@]*:(?P<password>[^@/]+)@", url)
    return bool(match)


def mismatches(compose: dict[str, Any], dockerfile: str, requirements: str, native: dict[str, Any]) -> list[str]:
    """Every way `compose` (+ Dockerfile, requirements.txt) differs from the native topology."""
    found: list[str] = []
    services = compose.get("services", {})
    airflow = airflow_services(compose)
    common_env = compose["x-airflow-common"].get("environment", {})

    # the same Airflow processes, each where the native stack says its compose counterpart is
    compose_heads = {head(command_words(svc)) for svc in airflow.values()}
    native_heads = {head(p["argv"]) for p in native["processes"].values()}
    if compose_heads != native_heads:
        found.append(f"Airflow processes differ: compose {sorted(compose_heads)}, native {sorted(native_heads)}")
    for name, process in native["processes"].items():
        svc = airflow.get(process["compose_service"])
        if svc is None:
            found.append(f"native {name}: no Airflow service {process['compose_service']!r} in compose")
        elif head(command_words(svc)) != head(process["argv"]):
            found.append(f"native {name} runs {head(process['argv'])!r}, compose {process['compose_service']} "
                         f"runs {head(command_words(svc))!r}")

    # the executor, connections, broker and result backend in every Airflow process
    init = services.get("airflow-init", {})
    for name, svc in {**airflow, "airflow-init": init}.items():
        env = svc.get("environment", {})
        if env.get("AIRFLOW__CORE__EXECUTOR") != native["executor"]:
            found.append(f"compose {name}: AIRFLOW__CORE__EXECUTOR={env.get('AIRFLOW__CORE__EXECUTOR')!r}, "
                         f"native {native['executor']!r}")
        if connections(env) != native["connections"]:
            found.append(f"compose {name}: connections {connections(env)} != native {native['connections']}")
    for name, process in native["processes"].items():
        env = process["env"]
        if env.get("AIRFLOW__CORE__EXECUTOR") != native["executor"] or native["executor"] != "CeleryExecutor":
            found.append(f"native {name}: executor {env.get('AIRFLOW__CORE__EXECUTOR')!r}")
        if env.get("AIRFLOW__CELERY__BROKER_URL") != native["broker_url"] \
                or env.get("AIRFLOW__CELERY__RESULT_BACKEND") != native["result_backend"]:
            found.append(f"native {name}: broker or result backend differs from the rest of the stack")
        missing = sorted(k for k in common_env if k.startswith("AIRFLOW__") and k not in env)
        if missing:
            found.append(f"native {name}: Airflow settings compose sets are missing: {missing}")
    for side, broker, backend in (("compose", str(common_env.get("AIRFLOW__CELERY__BROKER_URL", "")),
                                   str(common_env.get("AIRFLOW__CELERY__RESULT_BACKEND", ""))),
                                  ("native", native["broker_url"], native["result_backend"])):
        if not broker.startswith("redis://") or not url_has_password(broker):
            found.append(f"{side}: the broker must be Redis with a password, got {broker!r}")
        if not backend.startswith("db+postgresql://") or not url_has_password(backend):
            found.append(f"{side}: the result backend must be the PostgreSQL metadata DB, got {backend!r}")

    # one Airflow version: requirements.txt, the Dockerfile's base image, the image tag, the venv
    pinned = re.search(r"^apache-airflow==(\S+)", requirements, re.MULTILINE)
    base = re.search(r"^FROM apache/airflow:(?P<version>[^-\s]+)-python(?P<python>\S+)", dockerfile, re.MULTILINE)
    version = pinned.group(1) if pinned else None
    if base is None or base.group("version") != version:
        found.append(f"Dockerfile FROM {base.group(0) if base else None!r} is not Airflow {version} "
                     "(requirements.txt)")
    if base is not None and base.group("python") != native["python"]:
        found.append(f"Dockerfile Python {base.group('python')} != native Python {native['python']}")
    if not str(compose["x-airflow-common"].get("image", "")).endswith(f":{version}"):
        found.append(f"compose image {compose['x-airflow-common'].get('image')!r} is not tagged {version}")
    if native["airflow_version"] != version:
        found.append(f"the native stack runs Airflow {native['airflow_version']}, requirements.txt pins {version}")

    # the writer pool the load tasks run in, created on both sides
    pool = native["pool"]
    if pool != {"name": WRITER_POOL, "slots": 1}:
        found.append(f"native pool {pool} is not the DAGs' one-slot {WRITER_POOL}")
    init_script = " ".join(command_words(init))
    if not re.search(rf"airflow pools set {re.escape(pool['name'])} {pool['slots']}\b", init_script):
        found.append(f"compose airflow-init does not create pool {pool['name']} with {pool['slots']} slot(s)")

    # the services that are not Airflow, the availability service among them
    for name in native["services"]:
        if name not in services:
            found.append(f"compose has no {name!r} service")
    availability = services.get("availability", {})
    if f"-m {native['availability_module']}" not in " ".join(command_words(availability)):
        found.append(f"compose availability does not run python -m {native['availability_module']}")
    env = availability.get("environment", {})
    if not {"STOCKSYNC_AVAILABILITY_SHOP_DSN", "STOCKSYNC_AVAILABILITY_SECRET"} <= set(env):
        found.append("compose availability lacks STOCKSYNC_AVAILABILITY_SHOP_DSN or _SECRET")
    return found


def real() -> tuple[dict[str, Any], str, str, dict[str, Any]]:
    return (yaml.safe_load(COMPOSE.read_text()), DOCKERFILE.read_text(), REQUIREMENTS.read_text(),
            celery_stack.topology())


def test_compose_matches_the_native_stack() -> None:
    assert mismatches(*real()) == []


def _worker_runs_locally(c: dict, d: str, r: str, n: dict) -> None:
    c["services"]["airflow-worker"]["environment"]["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"


def _no_triggerer(c: dict, d: str, r: str, n: dict) -> None:
    del c["services"]["airflow-triggerer"]


def _connection_dropped(c: dict, d: str, r: str, n: dict) -> None:
    del c["services"]["airflow-scheduler"]["environment"]["AIRFLOW_CONN_WMS_API"]


def _open_broker(c: dict, d: str, r: str, n: dict) -> None:
    c["x-airflow-common"]["environment"]["AIRFLOW__CELERY__BROKER_URL"] = "redis://redis:6379/0"


def _no_pool(c: dict, d: str, r: str, n: dict) -> None:
    c["services"]["airflow-init"]["command"] = [w.replace("pools set", "pools list")
                                                for w in c["services"]["airflow-init"]["command"]]


def _no_availability(c: dict, d: str, r: str, n: dict) -> None:
    del c["services"]["availability"]


def _native_worker_gone(c: dict, d: str, r: str, n: dict) -> None:
    for name in [name for name, p in n["processes"].items() if p["worker"]]:
        del n["processes"][name]


def _native_setting_missing(c: dict, d: str, r: str, n: dict) -> None:
    del n["processes"]["scheduler"]["env"]["AIRFLOW__CORE__FERNET_KEY"]


DRIFTS = [
    (_worker_runs_locally, {}, "compose airflow-worker: AIRFLOW__CORE__EXECUTOR='LocalExecutor'"),
    (_no_triggerer, {}, "Airflow processes differ"),
    (_connection_dropped, {}, "compose airflow-scheduler: connections"),
    (_open_broker, {}, "compose: the broker must be Redis with a password"),
    (_no_pool, {}, "does not create pool stocksync_shop_writer"),
    (_no_availability, {}, "compose has no 'availability' service"),
    (_native_worker_gone, {}, "Airflow processes differ"),
    (_native_setting_missing, {}, "native scheduler: Airflow settings compose sets are missing: "
                                  "['AIRFLOW__CORE__FERNET_KEY']"),
    (None, {"dockerfile": "FROM apache/airflow:3.3.1-python3.11\n"}, "Dockerfile FROM"),
    (None, {"dockerfile": "FROM apache/airflow:3.3.2-python3.12\n"}, "Dockerfile Python 3.12"),
    (None, {"requirements": "apache-airflow==3.4.0\n"}, "requirements.txt pins 3.4.0"),
]


@pytest.mark.parametrize(("alter", "replace", "expected"), DRIFTS, ids=lambda v: getattr(v, "__name__", None))
def test_the_check_catches_drift(alter: Any, replace: dict[str, str], expected: str) -> None:
    compose, dockerfile, requirements, native = (copy.deepcopy(v) for v in real())
    dockerfile = replace.get("dockerfile", dockerfile)
    requirements = replace.get("requirements", requirements)
    if alter is not None:
        alter(compose, dockerfile, requirements, native)
    found = mismatches(compose, dockerfile, requirements, native)
    assert any(expected in problem for problem in found), found


def test_the_topology_is_what_the_stack_starts(tmp_path: Path) -> None:
    """`topology()` is not a second description that could drift: a CeleryStack (not started)
    launches exactly its processes with exactly its environment keys."""
    pg = LocalPostgres(name="topology", port=1, local_dir=tmp_path)
    stack = celery_stack.CeleryStack(tmp_path / "home", pg=pg, shop_dsn="postgresql://u:p@127.0.0.1:1/shop",
                                     stocksync_dsn="postgresql://u:p@127.0.0.1:1/stocksync", wms_url="http://127.0.0.1:2",
                                     token="t", webhook_url="http://127.0.0.1:3",
                                     api_port=5, redis_port=4, local_dir=tmp_path)
    native = celery_stack.topology(stack.workers)
    assert [p.name for p in stack.processes] == list(native["processes"])
    for process in stack.processes:
        env = celery_stack.process_env(stack.wiring, process, 6)
        assert sorted(env) == sorted(native["processes"][process.name]["env"]), process.name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"] == stack.redis.url
    workers = [p for p in stack.processes if p.worker]
    assert len(workers) == 2 and len({celery_stack.process_env(stack.wiring, p)[WORKER_NAME_ENV] for p in workers}) == 2


def test_each_worker_names_its_task_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_NAME_ENV, "worker-a")
    assert hostname().startswith("worker-a@") and len(hostname()) > len("worker-a@")
    monkeypatch.delenv(WORKER_NAME_ENV)
    assert "@" not in hostname()
