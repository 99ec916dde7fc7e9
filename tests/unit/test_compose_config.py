"""docker-compose.yaml checked for real by Docker Compose (Debian's `docker-compose` package, which
resolves a file with `docker-compose config` without a Docker engine; installed by
scripts/bootstrap.sh), then least privilege asserted on the configuration it resolved:

- the file is valid, and each secret is required (a start without it fails, naming it);
- no container mounts the project folder (which holds `.env` and `dags/`) or anything in it;
- each service receives only the secrets it uses: every secret is given a distinct value and we
  look for each value in each service's resolved configuration, so a secret reaching a service by
  any path (environment, interpolated command, connection JSON) is found;
- the services open to others (simulators, availability) run read-only, without capabilities;
- Airflow's API server and every other published port listen on the loopback interface only.
The same checks run on the file of the branch point (`OLD_COMPOSE`) and must find its faults.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
SECRETS = ("AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY", "AIRFLOW_DB_PASSWORD", "SHOP_DB_PASSWORD",
           "STOCKSYNC_DB_PASSWORD", "SYNC_DB_PASSWORD", "AVAILABILITY_DB_PASSWORD", "WMS_TOKEN", "REDIS_PASSWORD",
           "AVAILABILITY_SECRET")
AIRFLOW = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer")
# What each service may receive, from its job (docs/operations.md "Least privilege"), not from the file.
AIRFLOW_SECRETS = {"AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY", "AIRFLOW_DB_PASSWORD", "REDIS_PASSWORD",
                   "SYNC_DB_PASSWORD", "WMS_TOKEN"}
ALLOWED = {
    "airflow-db": {"AIRFLOW_DB_PASSWORD"},
    "redis": {"REDIS_PASSWORD"},
    "shop-db": {"SHOP_DB_PASSWORD"},
    "stocksync-db": {"STOCKSYNC_DB_PASSWORD"},
    "wms": {"WMS_TOKEN"},
    "webhook": set(),
    "availability": {"AVAILABILITY_DB_PASSWORD", "AVAILABILITY_SECRET"},
    "airflow-init": AIRFLOW_SECRETS | {"SHOP_DB_PASSWORD", "STOCKSYNC_DB_PASSWORD", "AVAILABILITY_DB_PASSWORD"},
    **{name: AIRFLOW_SECRETS for name in AIRFLOW},
}
CONFINED = ("wms", "webhook", "availability")
# the file at the branch point, to prove the checks find what was wrong with it
OLD_COMPOSE_COMMIT = "eae778c"


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is missing: run `bash scripts/bootstrap.sh` (installs Debian's docker-compose)")
    return found


def marker(name: str) -> str:
    return f"x{name.lower().replace('_', '')}x"  # distinct, URL- and JSON-safe, found by substring


def resolve(compose_file: Path, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of `compose_file` with exactly `env` (no `.env` of anyone's)."""
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return subprocess.run([docker_compose(), "--project-directory", str(compose_file.parent), "-f", str(compose_file),
                           "--env-file", str(empty), "config"],
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=120, check=False)


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (str(key), *strings(value))]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [] if node is None else [str(node)]


def binds(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each host-path mount (named volumes left out)."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        else:
            source, target = str(volume.get("source", "")), str(volume.get("target", ""))
            read_only, kind = bool(volume.get("read_only")), volume.get("type", "volume")
        if kind == "bind":
            found.append((source, target, read_only))
    return found


def faults(resolved: dict[str, Any], project: Path) -> list[str]:
    """Every way the resolved configuration gives a service more than it needs."""
    found = []
    for name, service in resolved["services"].items():
        for source, target, read_only in binds(service):
            inside = Path(source).resolve() == project or project in Path(source).resolve().parents
            if inside:
                found.append(f"{name}: mounts {source} (the project folder or inside it) at {target}"
                             + ("" if read_only else " read-write"))
        text = "\n".join(strings(service))
        received = {secret for secret in SECRETS if marker(secret) in text}
        extra = received - ALLOWED.get(name, set())
        if extra:
            found.append(f"{name}: receives {sorted(extra)}")
        for port in service.get("ports", []):
            published = str(port.get("host_ip", "")) if isinstance(port, dict) else str(port)
            if not published.startswith("127.0.0.1"):
                found.append(f"{name}: port {port} is published on every interface")
    for name in CONFINED:
        service = resolved["services"].get(name, {})
        if not service.get("read_only") or "ALL" not in service.get("cap_drop", []):
            found.append(f"{name}: not read-only without capabilities")
        if "no-new-privileges:true" not in service.get("security_opt", []):
            found.append(f"{name}: may gain privileges")
    return found


def everything() -> dict[str, str]:
    return {name: marker(name) for name in SECRETS}


@pytest.mark.slow  # the docker compose binary, once with every secret and once without each: ~7 s
def test_docker_compose_accepts_the_file_and_requires_each_secret(tmp_path: Path) -> None:
    done = resolve(COMPOSE, everything(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(yaml.safe_load(done.stdout)["services"]) == set(ALLOWED)
    started_without = {}
    for missing in SECRETS:
        env = {name: value for name, value in everything().items() if name != missing}
        without = resolve(COMPOSE, env, tmp_path)
        started_without[missing] = without.returncode == 0 or "see .env.example" not in without.stderr
    assert started_without == dict.fromkeys(SECRETS, False)


def old_file_faults(tmp_path: Path) -> str:
    """What `faults` finds in the file of the branch point (each mounted the project read-write...)."""
    old = subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_COMPOSE_COMMIT}:docker-compose.yaml"],
                         capture_output=True, text=True, check=True).stdout
    (tmp_path / "project").mkdir()
    old_file = tmp_path / "project" / "docker-compose.yaml"
    old_file.write_text(old)
    done = resolve(old_file, everything(), tmp_path)
    assert done.returncode == 0, done.stderr
    return "\n".join(faults(yaml.safe_load(done.stdout), old_file.parent))


def test_each_service_gets_only_what_it_needs(tmp_path: Path) -> None:
    # the checks find what was wrong with the old file (a checker that accepts everything fails here)
    found = old_file_faults(tmp_path)
    project = tmp_path / "project"
    for name in ("wms", "webhook", "availability", "airflow-worker"):
        assert f"{name}: mounts {project} (the project folder or inside it) at /opt/airflow/project read-write" \
            in found, found
    assert "availability: receives ['SHOP_DB_PASSWORD']" in found
    assert "airflow-worker: receives ['SHOP_DB_PASSWORD']" in found
    assert "airflow-apiserver: port" in found and "every interface" in found
    assert "wms: not read-only without capabilities" in found

    done = resolve(COMPOSE, everything(), tmp_path)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert faults(resolved, ROOT) == []
    services = resolved["services"]
    # the code comes with the image, not from the host
    for name in (*AIRFLOW, "airflow-init", *CONFINED):
        assert binds(services[name]) == [], name
    # the reports: written by task runners, only read by the API server
    assert any(v.endswith(":ro") or (isinstance(v, dict) and v.get("read_only"))
               for v in services["airflow-apiserver"]["volumes"])
    assert services["airflow-scheduler"].get("volumes", []) == []
    # Airflow reaches the shop as stocksync_sync, the availability service as stocksync_availability
    assert '"login": "stocksync_sync"' in services["airflow-worker"]["environment"]["AIRFLOW_CONN_STOCKSYNC_SHOP"]
    assert services["availability"]["environment"]["STOCKSYNC_AVAILABILITY_SHOP_DSN"].startswith(
        "postgresql://stocksync_availability:")
    assert "apply_roles(" in "\n".join(strings(services["airflow-init"]["command"]))
    # one login per person
    assert services["airflow-apiserver"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".FabAuthManager")


def test_dockerfile_brings_the_code_and_keeps_secrets_out() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1:] for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert ["dags", "/opt/stocksync/dags"] in copies and ["include", "/opt/stocksync/include"] in copies
    assert not any("--chown" in " ".join(c) for c in copies)  # root-owned: airflow cannot rewrite a DAG
    assert not any(c[0] == "." for c in copies)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[next(i for i, line in enumerate(ignored) if not line.startswith("#"))] == "*"
    assert not any(line.strip("!/") in (".env", ".local") for line in ignored if line.startswith("!"))


def test_dockerfile_builds_the_mysql_driver_apart_and_runs_as_airflow() -> None:
    """Airflow's images carry no MySQL client, and mysqlclient (the platforms' driver, a C extension)
    has no manylinux wheel: the image must build it in a stage of its own with the compiler and the
    MariaDB headers, so the image that runs keeps only the runtime library, and the wheel built is
    the one constraints.txt pins. Every stage gives the processes back to the airflow user."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")[1:]
    assert len(stages) == 2, "a build stage for the driver and the image that runs"
    build, final = stages
    assert "libmariadb-dev" in build and "gcc" in build and "pip wheel" in build
    assert "mysqlclient==" in build and "constraints.txt" in build
    assert "--from=" + build.split()[2] in final and "--find-links" in final
    assert "libmariadb3" in final
    assert not any(tool in final for tool in ("gcc", "libmariadb-dev", "build-essential"))
    for stage in stages:
        users = [line.split()[1] for line in stage.splitlines() if line.startswith("USER ")]
        assert users and users[-1] == "airflow"
    pinned = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("mysqlclient==")]
    assert len(pinned) == 1


def test_stocksync_s_own_database_is_another_server_than_the_shop(tmp_path: Path) -> None:
    """The shop and stocksync's own tables live on two database servers (so nothing can join across
    them): Airflow has a connection to each, `stocksync_conn_id` names stocksync's, both as
    stocksync_sync; the availability service reads each as stocksync_availability; each server's
    administrator password reaches only that server and the init container."""
    done = resolve(COMPOSE, everything(), tmp_path)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    worker = services["airflow-worker"]["environment"]
    shop, own = json.loads(worker["AIRFLOW_CONN_STOCKSYNC_SHOP"]), json.loads(worker["AIRFLOW_CONN_STOCKSYNC_DB"])
    assert worker["STOCKSYNC_STOCKSYNC_CONN_ID"] == "stocksync_db"
    assert (shop["host"], shop["schema"]) == ("shop-db", "shop")
    assert (own["host"], own["schema"]) == ("stocksync-db", "stocksync")
    assert shop["login"] == own["login"] == "stocksync_sync"
    assert services["stocksync-db"]["image"].startswith("postgres:")
    availability = services["availability"]["environment"]
    assert availability["STOCKSYNC_AVAILABILITY_STOCKSYNC_DSN"].startswith("postgresql://stocksync_availability:")
    assert "@stocksync-db:5432/stocksync" in availability["STOCKSYNC_AVAILABILITY_STOCKSYNC_DSN"]
    assert "@shop-db:5432/shop" in availability["STOCKSYNC_AVAILABILITY_SHOP_DSN"]
    init = "\n".join(strings(services["airflow-init"]["command"]))
    assert "apply_schema(admin, own)" in init and "stocksync_admin_dsn=own" in init
