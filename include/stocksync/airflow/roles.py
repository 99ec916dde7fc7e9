"""Who may do what in Airflow, under its FAB auth manager (`apache-airflow-providers-fab`): one
account per person, so a run's "triggered by" names somebody, and DAG-level rights
(docs/operations.md "Who may do what").

- `viewer`: FAB's `Viewer` role (reads every DAG, run and task log; triggers, pauses and clears
  nothing) plus `stocksync_reader`, which may list Airflow's plugins: the UI shows the "Stock
  sync" entry and the run page's "Sync report" tab only to who may (FAB gives that to `Admin` only).
- `ops`: what `viewer` has plus `stocksync_ops`, which may trigger the push DAGs (`PUSH_DAGS`:
  create runs of them, and edit them, which FAB asks of whoever creates a run) and nothing else.
- `admin`: FAB's `Admin` role: everything, users and roles included.

`python -m include.stocksync.airflow.roles` creates or completes both roles (idempotent;
docker-compose.yaml's airflow-init runs it). With `--users-file FILE` (JSON
`{"<username>": {"role": "ops", "password": "..."}}`, a private file) it also creates those
accounts or brings their roles and passwords in line (the local stack uses it); passwords are
never on a command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OPS_ROLE = "stocksync_ops"
READER_ROLE = "stocksync_reader"
PUSH_DAGS = ("inventory_full_push",)
# our role names -> FAB roles an account gets
ACCOUNT_ROLES = {"admin": ("Admin",), "ops": ("Viewer", READER_ROLE, OPS_ROLE), "viewer": ("Viewer", READER_ROLE)}


def ops_permissions() -> list[tuple[str, str]]:
    """(action, resource) pairs of `stocksync_ops`: FAB's per-DAG resources of each push DAG."""
    from airflow.providers.fab.www.security import permissions

    found = []
    for dag_id in PUSH_DAGS:
        found.append((permissions.ACTION_CAN_EDIT, permissions.resource_name(dag_id, permissions.RESOURCE_DAG)))
        found.append((permissions.ACTION_CAN_CREATE, permissions.resource_name(dag_id, permissions.RESOURCE_DAG_RUN)))
    return found


def reader_permissions() -> list[tuple[str, str]]:
    """(action, resource) pairs of `stocksync_reader`: the plugin list, where the UI finds our pages."""
    from airflow.providers.fab.www.security import permissions

    return [(permissions.ACTION_CAN_READ, permissions.RESOURCE_PLUGIN)]


def ensure_roles(sm: Any) -> None:
    """`stocksync_ops` and `stocksync_reader` with exactly their permissions added (idempotent)."""
    for name, wanted in ((OPS_ROLE, ops_permissions()), (READER_ROLE, reader_permissions())):
        role = sm.find_role(name) or sm.add_role(name)
        for action, resource in wanted:
            sm.add_permission_to_role(role, sm.create_permission(action, resource))


def ensure_users(sm: Any, users: dict[str, dict[str, str]]) -> None:
    """Create each account or set its roles and password to the ones given."""
    for username, account in users.items():
        kind, password = account.get("role"), account.get("password")
        if kind not in ACCOUNT_ROLES:
            raise ValueError(f"account {username!r}: role {kind!r} is not one of {sorted(ACCOUNT_ROLES)}")
        if not password:
            raise ValueError(f"account {username!r} has no password")
        roles = [sm.find_role(name) for name in ACCOUNT_ROLES[kind]]
        user = sm.find_user(username=username)
        if user is None:
            sm.add_user(username, username, kind, f"{username}@stocksync.invalid", roles, password)
            continue
        user.roles = roles
        sm.update_user(user)
        sm.reset_password(user.id, password)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.stocksync.airflow.roles",
                                     description="create stocksync's Airflow roles (FAB auth manager)")
    parser.add_argument("--users-file", type=Path, help="JSON {username: {role, password}} of accounts to ensure")
    args = parser.parse_args(argv)
    users = json.loads(args.users_file.read_text()) if args.users_file else {}
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    with get_application_builder() as appbuilder:
        ensure_roles(appbuilder.sm)
        ensure_users(appbuilder.sm, users)
    print(f"stocksync: Airflow roles {OPS_ROLE} (may trigger {', '.join(PUSH_DAGS)}) and {READER_ROLE} ready; "
          f"{len(users)} account(s) ensured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
