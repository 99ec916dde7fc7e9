"""docker-compose.yaml must not be able to start with a secret nobody chose.

A default such as `${WMS_TOKEN:-local-demo-token}` or `POSTGRES_PASSWORD: shop` is the same in
every clone, so any deployment that forgot to set it is open to whoever reads the repository.
Compose's `${VAR:?message}` makes the start fail instead. These tests read the file as data
(PyYAML) and check every place a secret can hide: variables named like secrets, environment
entries named like secrets, passwords inside URLs and inside the JSON of `AIRFLOW_CONN_*`, and
command lines (which `ps` shows to every user). The checker is run on a copy of the old file's
mistakes too, so a checker that silently accepts everything fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|FERNET|(^|_)KEY$", re.IGNORECASE)
URL_PASSWORD = re.compile(r"://[^/:@\s]*:(?P<password>[^@\s]*)@")
COMMAND_KEYS = {"command", "entrypoint", "test"}  # `test` is a healthcheck's command
SECRET_FLAG = re.compile(r"--(token|password|secret)\b", re.IGNORECASE)


def interpolations(text: str) -> list[tuple[str, str, str]]:
    """`(name, operator, argument)` of every `$NAME` / `${NAME<op><arg>}` in `text` (Compose syntax,
    `$$` is a literal dollar; nested braces are matched)."""
    found: list[tuple[str, str, str]] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
            continue
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            inner = text[i + 2:j - 1]
            match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?(.*)", inner, re.DOTALL)
            if match:
                found.append((match.group(1), match.group(2) or "", match.group(3)))
                found.extend(interpolations(match.group(3)))
            i = j
            continue
        match = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:])
        if match:
            found.append((match.group(1), "", ""))
            i += match.end()
        else:
            i += 1
    return found


def only_required(value: str) -> bool:
    """Whether `value` is exactly one `${NAME:?message}` (a value nobody else can know)."""
    found = interpolations(value)
    return (len(found) == 1 and found[0][1] == ":?" and found[0][2].strip() != ""
            and value.strip() == f"${{{found[0][0]}:?{found[0][2]}}}")


def scalars(node: Any, path: str = "") -> Iterator[tuple[str, str | None, str]]:
    """`(path, key, text)` of every string in the document (list items carry their list's key)."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(value, (dict, list)):
                yield from scalars(value, sub)
            elif value is not None:
                yield sub, str(key), str(value)
    elif isinstance(node, list):
        key = path.rsplit(".", 1)[-1]
        for index, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield from scalars(value, f"{path}[{index}]")
            elif value is not None:
                yield f"{path}[{index}]", key, str(value)


def problems(compose_text: str) -> list[str]:
    """Every way `compose_text` could start with, or show, a secret nobody set."""
    found: list[str] = []
    document = yaml.safe_load(compose_text)
    for path, key, text in scalars(document):
        for name, op, _ in interpolations(text):
            if SECRET_NAME.search(name) and op != ":?":
                found.append(f"{path}: ${{{name}}} must be required (`:?`), not `{op or 'plain'}`")
        if key is not None and SECRET_NAME.search(key) and not only_required(text):
            found.append(f"{path}: a secret must be exactly ${{VAR:?message}}, got {text!r}")
        for match in URL_PASSWORD.finditer(text):
            if match.group("password") and not only_required(match.group("password")):
                found.append(f"{path}: URL password is not a required variable: {match.group('password')!r}")
        if text.lstrip().startswith("{"):
            try:
                conn = json.loads(text)
            except ValueError:
                conn = None
            if isinstance(conn, dict):
                for field, value in conn.items():
                    if SECRET_NAME.search(field) and value not in ("", None) and not only_required(str(value)):
                        found.append(f"{path}: JSON {field!r} is not a required variable: {value!r}")
        if key in COMMAND_KEYS or (path.split(".")[-1].split("[")[0] in COMMAND_KEYS):
            if SECRET_FLAG.search(text):
                found.append(f"{path}: a secret passed as a command-line flag: {text!r}")
            if any(SECRET_NAME.search(name) for name, _, _ in interpolations(text)):
                found.append(f"{path}: a secret interpolated into a command line: {text!r}")
            if any(m.group("password") for m in URL_PASSWORD.finditer(text)):
                found.append(f"{path}: credentials in a command line: {text!r}")
    return found


NOT_SECRET_SETTINGS = {"SHOP_TIMEZONE"}  # in .env.example too, optional (a default applies)


def required_secrets(compose_text: str) -> set[str]:
    return {name for _, _, text in scalars(yaml.safe_load(compose_text))
            for name, op, _ in interpolations(text) if op == ":?" and SECRET_NAME.search(name)}


def test_compose_has_no_usable_default_secret() -> None:
    assert problems(COMPOSE.read_text()) == []


def test_compose_requires_the_secrets_the_issue_names() -> None:
    assert required_secrets(COMPOSE.read_text()) == {
        "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY", "AIRFLOW_DB_PASSWORD", "SHOP_DB_PASSWORD", "WMS_TOKEN",
        "REDIS_PASSWORD", "AVAILABILITY_SECRET", "SYNC_DB_PASSWORD", "AVAILABILITY_DB_PASSWORD",
        "STOCKSYNC_DB_PASSWORD"}


def test_every_required_secret_is_documented_without_a_value() -> None:
    text = COMPOSE.read_text()
    header = "\n".join(line for line in text.splitlines()[:40] if line.startswith("#"))
    example = {line.split("=", 1)[0]: line.split("=", 1)[1]
               for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")}
    required = required_secrets(text)
    assert set(example) == required | NOT_SECRET_SETTINGS
    assert all(value == "" for value in example.values()), "`.env.example` must not carry values"
    for name in required:
        assert re.search(rf"\b{name}\b", header), f"{name} is not described at the top of docker-compose.yaml"
    assert "secrets.token_urlsafe" in header and "secrets.token_urlsafe" in ENV_EXAMPLE.read_text()


def test_the_simulators_do_not_receive_airflows_secrets() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("wms", "webhook"):
        environment = services[name]["environment"]
        assert not any(key.startswith("AIRFLOW") for key in environment), name
    assert only_required(services["wms"]["environment"]["STOCKSYNC_WMS_TOKEN"])


def test_the_check_catches_the_old_mistakes() -> None:
    old = """
x-common: &common
  environment:
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: postgresql+psycopg2://airflow:airflow@airflow-db/airflow
    AIRFLOW__API_AUTH__JWT_SECRET: ${AIRFLOW_JWT_SECRET:-change-me-change-me}
    AIRFLOW_CONN_SHOP: '{"conn_type": "postgres", "login": "shop", "password": "shop"}'
    AIRFLOW_CONN_WMS: '{"conn_type": "http", "password": "${WMS_TOKEN:-local-demo-token}"}'
services:
  db:
    environment:
      POSTGRES_PASSWORD: shop
  wms:
    <<: *common
    command: python -m devstack.wms_service --token ${WMS_TOKEN:?set it}
  init:
    command:
      - -c
      - apply_schema('postgresql://shop:shop@shop-db:5432/shop')
  fine:
    environment:
      OTHER_TOKEN: ${OTHER_TOKEN:?set it}
      PLAIN: value
"""
    found = "\n".join(problems(old))
    assert "SQL_ALCHEMY_CONN: URL password" in found
    assert "JWT_SECRET: ${AIRFLOW_JWT_SECRET} must be required" in found
    assert "AIRFLOW_CONN_SHOP: JSON 'password'" in found
    assert "AIRFLOW_CONN_WMS: JSON 'password'" in found and "${WMS_TOKEN} must be required" in found
    assert "services.db.environment.POSTGRES_PASSWORD: a secret must be" in found
    assert "services.wms.command: a secret passed as a command-line flag" in found
    assert "services.wms.command: a secret interpolated into a command line" in found
    assert "services.init.command[1]: credentials in a command line" in found
    assert "fine" not in found
