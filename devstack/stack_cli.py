"""`stack`: the embedded local stack plus the full Airflow 3 UI, for a person at a keyboard.

    bash scripts/stack.sh [--port 8080] [--skus 2000] [--seed 7] [--reseed] [--availability-port 18767]
    bash scripts/stack.sh --executor celery [--redis-port 16379] [same options]
    bash scripts/stack.sh --auth fab [--user alice:ops --user bob:viewer ...] [same options]
    PYTHONPATH=. .venv/bin/python -m devstack.stack_cli [same options]

Starts (or reuses) the local PostgreSQL (two databases: `shop`, the reference shop, and
`stocksync`, stocksync's own, Airflow's `stocksync_db` connection), the WMS service and the alert
webhook receiver, applies both schemas, seeds the demo shop once, then runs `airflow standalone`
(API server with the UI, scheduler, dag-processor, triggerer; AIRFLOW_HOME
`.local/airflow-standalone`) wired to them, and prints the URL, the login and the
"Stock sync" page. Ctrl-C stops Airflow; PostgreSQL, the WMS and the webhook receiver keep
running for the next command (`python -m devstack.cli stop` ends them).

Both variants also start the availability service (devstack/availability_local.py) on a fixed
port and print the URL to paste into the storefront platform; Ctrl-C stops it with Airflow.
`--executor celery` runs docker-compose.yaml's CeleryExecutor topology natively instead of
`airflow standalone` (devstack/celery_stack.py).

`--auth fab` logs people in one by one, as docker-compose.yaml does: Airflow's FAB auth manager,
an account per `--user NAME:ROLE` (roles `admin`, `ops`: may trigger the push DAGs, `viewer`: reads
only; include/stocksync/airflow/roles.py) plus an admin account named after you, each with its
own random password (kept in `.local/airflow-fab/fab_passwords.json`, printed at start). Its
AIRFLOW_HOME is `.local/airflow-fab`, apart from the simple-auth one.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import socket
import sys
import time
from types import FrameType

from devstack.airflow_standalone import AUTH_MODES, AirflowStandalone, AirflowStandaloneError
from devstack.availability_local import DEFAULT_PORT as AVAILABILITY_PORT
from devstack.availability_local import describe, local_availability
from devstack.cli import DAG_ID, ensure_seeded, store_env
from devstack.local_pg import LOCAL_DIR
from devstack.local_secrets import PRIVATE_UMASK, wms_token_file
from devstack.local_stack import LocalStack
from include.stocksync.airflow.roles import ACCOUNT_ROLES
from include.stocksync.sync.pipeline import apply_schema

AIRFLOW_HOME = LOCAL_DIR / "airflow-standalone"
AIRFLOW_HOME_FAB = LOCAL_DIR / "airflow-fab"


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stack(args: argparse.Namespace) -> int:
    if _port_in_use(args.port):
        print(f"stocksync: port {args.port} is already in use (another `stack` running?); "
              "choose another with --port", file=sys.stderr)
        return 2
    if _port_in_use(args.availability_port):
        print(f"stocksync: port {args.availability_port} is already in use; choose another with --availability-port",
              file=sys.stderr)
        return 2
    local = LocalStack(wms_skus=args.skus, wms_seed=args.seed).start()
    apply_schema(local.shop_dsn, local.stocksync_dsn)
    seeded = ensure_seeded(local, args.skus, args.seed, reseed=args.reseed)
    print(f"stocksync: PostgreSQL {local.databases()}, "
          f"WMS {local.wms.url} (token in {wms_token_file()}), alert webhook {local.webhook.url}")
    print("stocksync: demo data " + (f"seeded ({args.skus} SKUs, seed {args.seed})" if seeded else "already seeded"))
    availability = local_availability(local.shop_dsn, stocksync_dsn=local.stocksync_dsn,
                                      port=args.availability_port).start()

    airflow = AirflowStandalone(AIRFLOW_HOME_FAB if args.auth == "fab" else AIRFLOW_HOME, shop_dsn=local.shop_dsn,
                                stocksync_dsn=local.stocksync_dsn, wms_url=local.wms.url, token=local.token,
                                webhook_url=local.webhook.url, port=args.port, auth=args.auth,
                                users=accounts(args.user))
    if args.shop != "postgres":  # the nightly writes a Magento 2 / PrestaShop store in the dev MariaDB
        airflow.env.update(store_env(args.shop, local, args.seed))
        print(f"stocksync: shop {args.shop}: a store with the WMS's catalog in the dev MariaDB "
              f"(database {args.shop}); the availability service still answers from the reference shop")
    # Ctrl-C, `kill` and a closed terminal all stop Airflow cleanly (SIGINT explicitly: a shell
    # that starts us in the background would otherwise leave it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    print(f"stocksync: starting Airflow (log {airflow.log_path}) ...", flush=True)
    code = 0
    try:
        airflow.start(timeout=args.timeout)
        print("\n".join([
            "",
            f"Airflow is up after {airflow.startup_seconds:.0f}s",
            f"  URL         {airflow.url}/",
            *(f"  login       {name} ({role}): password {airflow.passwords[name]}"
              for name, role in airflow.users.items()),
            f"  Stock sync  {airflow.url}/stocksync/   (also in Airflow's navigation: 'Stock sync')",
            f"  DAG         {DAG_ID} (paused when new: unpause it or trigger it in the UI)",
            *describe(availability),
            "",
            "Press Ctrl-C to stop Airflow and the availability service. PostgreSQL, the WMS and the webhook",
            "receiver keep running; stop them with: PYTHONPATH=. .venv/bin/python -m devstack.cli stop",
        ]), flush=True)
        while airflow.process is not None and airflow.process.poll() is None:
            time.sleep(1)
        print(f"stocksync: Airflow exited on its own; see {airflow.log_path}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("\nstocksync: stopping Airflow ...", flush=True)
    except AirflowStandaloneError as exc:
        print(f"stocksync: {exc}", file=sys.stderr)
        code = 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not leave
            signal.signal(signum, signal.SIG_IGN)                        # Airflow half-stopped
        airflow.stop()
        availability.stop()
    print("stocksync: Airflow stopped. PostgreSQL, WMS and webhook are still running "
          "(PYTHONPATH=. .venv/bin/python -m devstack.cli stop ends them).")
    return code


def accounts(specs: list[str]) -> dict[str, str]:
    """`--user NAME:ROLE` values plus an admin account named after whoever runs the stack."""
    found = {getpass.getuser(): "admin"}
    for spec in specs:
        name, _, role = spec.partition(":")
        if not name or role not in ACCOUNT_ROLES:
            raise SystemExit(f"stocksync: --user {spec!r}: expected NAME:ROLE with ROLE one of "
                             f"{', '.join(ACCOUNT_ROLES)}")
        found[name] = role
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stocksync stack",
                                     description="the local stack plus the Airflow 3 UI (airflow standalone)")
    parser.add_argument("--port", type=int, default=8080, help="Airflow API server/UI port (default 8080)")
    parser.add_argument("--skus", type=int, default=2000, help="demo catalogue size when seeding")
    parser.add_argument("--seed", type=int, default=7, help="demo data seed")
    parser.add_argument("--reseed", action="store_true", help="reset the demo shop and WMS first")
    parser.add_argument("--shop", choices=["postgres", "magento2", "prestashop"], default="postgres",
                        help="the shop the nightly writes: the reference shop, or a store in the dev MariaDB")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for Airflow to answer")
    parser.add_argument("--executor", choices=["standalone", "celery"], default="standalone",
                        help="standalone: `airflow standalone` (LocalExecutor, default); celery: docker-compose.yaml's "
                             "CeleryExecutor topology run natively (Redis, two workers; devstack/celery_stack.py)")
    parser.add_argument("--redis-port", type=int, default=16379, help="Redis port of --executor celery")
    parser.add_argument("--auth", choices=AUTH_MODES, default="simple",
                        help="simple: one admin login (default); fab: per-person accounts with roles "
                             "(Airflow's FAB auth manager; --executor standalone only)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:ROLE",
                        help="with --auth fab: an account (ROLE admin, ops or viewer); repeat per person")
    parser.add_argument("--availability-port", type=int, default=AVAILABILITY_PORT,
                        help=f"port of the availability service (default {AVAILABILITY_PORT})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.umask(PRIVATE_UMASK)  # what we write under .local/ is for this user only
    if args.executor == "celery":
        if args.auth != "simple" or args.user:
            parser.error("--auth fab / --user work with --executor standalone (the default) only")
        from devstack.celery_stack import run as run_celery

        return run_celery(args)
    return stack(args)


if __name__ == "__main__":
    sys.exit(main())
