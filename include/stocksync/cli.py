"""stocksync's one command line: `python -m include.stocksync <command>`.

Production commands work on a deployment's database:

    python -m include.stocksync db upgrade [--conn-id stocksync_shop]   apply pending schema migrations
    python -m include.stocksync db pending [--conn-id stocksync_shop]   list them without applying
    python -m include.stocksync orders dead-letters | requeue <ids> | requeue --all | push
                                        orders the WMS refused, and sending them again
    python -m include.stocksync import-variants      the store's variants into sku_map (magento2, prestashop)

The database comes from the environment, never from the command line (a password on argv is
visible to every local user in `ps`): `STOCKSYNC_DSN` if set, else the Airflow connection
`--conn-id` (e.g. `AIRFLOW_CONN_STOCKSYNC_SHOP` or the metadata DB's connections).

Development commands (a source checkout with the `devstack` package) start the embedded stack:

    python -m include.stocksync demo [--skus N] [--seed S] [--reseed] [--freeze-mode M]
    python -m include.stocksync stack [--port 8080]
    python -m include.stocksync stop

Other modules add commands with `command(name, help)`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}
# development commands: name -> (module, help); their own parsers take the rest of the line
DEV_COMMANDS = {
    "demo": ("devstack.cli", "start the local stack, seed, run the nightly sync once, print a summary"),
    "stop": ("devstack.cli", "stop the local PostgreSQL, WMS service and webhook receiver"),
    "stack": ("devstack.stack_cli", "the local stack plus the Airflow UI (airflow standalone)"),
}


# what a connection string may hide its password in: a URL's user:password@ and a key=value password
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)@")
# (a value runs to the next `key=` or the end: an unquoted password with a space is still all of it)
_KEY_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|(?:(?!\s+\w+\s*=).)+)", re.IGNORECASE)


def redacted(text: str, environ: dict[str, str] | None = None) -> str:
    """`text` (an error a command prints) without any password: each password of the connection
    strings in the environment (STOCKSYNC_*DSN, AIRFLOW_CONN_*; a malformed one too: its error quotes
    it), then anything shaped like one."""
    environ = dict(os.environ if environ is None else environ)
    secrets: set[str] = set()
    for name, value in environ.items():
        if value and ("DSN" in name or name.startswith("AIRFLOW_CONN_") or "TOKEN" in name or "PASSWORD" in name):
            if "TOKEN" in name or "PASSWORD" in name:
                secrets.add(value)
            secrets.update(m.group(2) for m in _URL_PASSWORD.finditer(value))
            for m in _KEY_PASSWORD.finditer(value):  # and each word of it: an error may quote one
                secrets.update([m.group(2).strip("'"), *m.group(2).strip("'").split()])
            secrets.update(re.findall(r'"password"\s*:\s*"([^"]*)"', value))
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _KEY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _reported(run: Callable[[], int]) -> int:
    """Run a command; a failure of a database, the configuration or an Airflow connection is one
    line on stderr, passwords redacted, exit code 1 (a traceback quoted a malformed DSN whole)."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001  (psycopg's, Airflow's, the config's: the message is what matters)
        print(f"stocksync: {type(exc).__name__}: {redacted(str(exc))[:2000]}", file=sys.stderr)
        return 1


def command(name: str, help_text: str, arguments: Callable[[argparse.ArgumentParser], None] = lambda p: None,
            ) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _COMMANDS[name] = (help_text, arguments, handler)
        return handler
    return register


def database_dsn(conn_id: str) -> str:
    """`STOCKSYNC_DSN`, else the Airflow connection `conn_id`."""
    return os.environ.get("STOCKSYNC_DSN") or _connection_dsn(conn_id)


def _connection_dsn(conn_id: str) -> str:
    """The DSN of the Airflow connection `conn_id`: the command line is an entry point, so it may
    ask the Airflow layer (the sync code it calls is handed the DSN)."""
    from include.stocksync.airflow.connections import postgres_dsn

    return postgres_dsn(conn_id)


def _conn_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conn-id", default="stocksync_shop",
                        help="Airflow connection of the shop database (ignored when STOCKSYNC_DSN is set)")


@command("db-upgrade", "apply pending migrations of stocksync's schema", _conn_id)
def _db_upgrade(args: argparse.Namespace) -> int:
    from include.stocksync.store.migrations import upgrade

    applied = upgrade(database_dsn(args.conn_id))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


@command("db-pending", "list migrations not yet applied", _conn_id)
def _db_pending(args: argparse.Namespace) -> int:
    from include.stocksync.store.migrations import pending

    names = pending(database_dsn(args.conn_id))
    print("\n".join(names) if names else "up to date")
    return 0


@command("import-variants", "map the shop's variants (Magento configurable children, PrestaShop "
                            "combinations) to their SKUs in sku_map, for the availability service")
def _import_variants(args: argparse.Namespace) -> int:
    """Read every variant the storefront sells as options of a parent through the shop port
    (`shop_platform`, `shop_conn_id`, `platform_options`) and write its mapping (parent code +
    options -> the variant's SKU) into stocksync's `sku_map`, in one transaction; a mapping of the
    same code and options is replaced. Run it after the catalog changes (docs/platforms.md)."""
    from include.stocksync.airflow.connections import shop_port
    from include.stocksync.availability.skus import import_variants
    from include.stocksync.config.settings import process_settings
    from include.stocksync.domain.errors import PermanentError, TransientError
    from include.stocksync.runs.uow import transaction
    from include.stocksync.shop.mysql_family import MySQLShop

    settings = process_settings()
    shop = shop_port(settings)
    if not isinstance(shop, MySQLShop):
        print(f"import-variants: shop_platform {settings.shop_platform} has no variants of its own; map items with "
              "include.stocksync.availability.skus.upsert_mapping (docs/availability.md)", file=sys.stderr)
        return 2
    stocksync = os.environ.get("STOCKSYNC_DSN") or (
        _connection_dsn(settings.stocksync_conn_id) if settings.stocksync_conn_id else "")
    if not stocksync:
        print("import-variants: sku_map is in stocksync's own PostgreSQL database, not in the "
              f"{settings.shop_platform} store's: set stocksync_conn_id (or STOCKSYNC_DSN)", file=sys.stderr)
        return 2
    try:
        variants = shop.variant_skus()
        with transaction(stocksync) as conn:  # the mappings all or none
            count = import_variants(conn, variants)
    except (PermanentError, TransientError, ValueError) as exc:
        print(f"import-variants: nothing imported: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"platform": settings.shop_platform, "variants": count,
                      "codes": len({variant.code for variant in variants})}))
    return 0


def _load_plugins() -> None:
    """Modules that register commands of their own (imported only when the CLI runs)."""
    for module in ("include.stocksync.sync.order_push",):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


def _orders_dsn(args: argparse.Namespace) -> str:
    dsn = os.environ.get(args.dsn_env, "")
    if dsn:
        return dsn
    from include.stocksync.config.settings import process_settings

    settings = process_settings()  # stocksync's own database holds the queue and the dead letters
    return _connection_dsn(settings.stocksync_conn_id or settings.shop_conn_id)


def _orders_shop() -> Any:
    """The shop the push reads orders from and acknowledges in: None when it lives in stocksync's
    database (the single-database layout), else the deployment's shop port, as the DAG's tasks
    open it (`shop_platform` over `shop_conn_id`, with its `platform_options`)."""
    from include.stocksync.airflow.connections import shop_port
    from include.stocksync.config.settings import process_settings

    settings = process_settings()
    if not settings.stocksync_conn_id:
        return None
    return shop_port(settings)


def _limit(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{value} is not from 1 to 100000")
    return value


def orders_main(argv: list[str]) -> int:
    """`python -m include.stocksync orders {dead-letters,requeue,push} ...` (docs/order-push-and-intraday.md):
    the command line of `sync/order_push.py`, here with the Airflow connection lookup it falls back to."""
    parser = argparse.ArgumentParser(prog="python -m include.stocksync orders",
                                     description="Orders the WMS refused: list them, re-queue them.")
    from include.stocksync.sync import order_push

    parser.add_argument("--dsn-env", default="STOCKSYNC_SHOP_DSN",
                        help="environment variable holding stocksync's database DSN (default STOCKSYNC_SHOP_DSN; "
                             "unset: the Airflow connection of stocksync_conn_id, else shop_conn_id)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("dead-letters", help="list the held orders with the WMS's reasons")
    listing.add_argument("--limit", type=_limit, default=1000, help="at most this many (1 to 100000)")
    again = sub.add_parser("requeue", help="send held orders again in the next orders_to_wms run")
    again.add_argument("order_ids", nargs="*", type=int)
    again.add_argument("--all", action="store_true", help="every held order")
    again.add_argument("--by", default=os.environ.get("USER", "ops"), help="who re-queues (recorded)")
    push = sub.add_parser("push", help="send the queue now (what one orders_to_wms run does)")
    push.add_argument("--run-id", default=f"cli__{datetime.now(timezone.utc).isoformat()}")
    args = parser.parse_args(argv)
    dsn = _orders_dsn(args)
    if args.command == "dead-letters":
        for row in order_push.dead_letters(dsn, args.limit):
            print(json.dumps(row, default=str))
        return 0
    if args.command == "requeue":
        if not args.order_ids and not args.all:
            parser.error("name the order ids to re-queue, or --all")
        if args.order_ids and args.all:
            parser.error("name the order ids to re-queue or give --all, not both")
        done = order_push.requeue(dsn, order_ids=args.order_ids, everything=args.all, by=args.by)
        print(json.dumps({"requeued": done}))
        return 0
    import requests

    from include.stocksync.config.settings import process_settings

    settings = process_settings()
    session = requests.Session()
    token = os.environ.get("STOCKSYNC_WMS_TOKEN", "")
    if not token:
        parser.error("set STOCKSYNC_WMS_TOKEN (the WMS bearer token) and STOCKSYNC_WMS_URL")
    session.headers["Authorization"] = f"Bearer {token}"
    client = order_push.WmsOrders(session, os.environ.get("STOCKSYNC_WMS_URL", "http://127.0.0.1:8765"),
                       timeout=settings.loop.order_timeout_seconds)
    shop = _orders_shop()
    try:
        result = order_push.push_orders(dsn, client, settings, run_id=args.run_id, shop=shop)
        result.cancels_sent = order_push.push_cancellations(dsn, client, settings, run_id=args.run_id,
                                                            shop=shop).cancels_sent
    finally:
        order_push.finish_run(dsn, args.run_id)
    print(json.dumps(result.as_dict()))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "orders":
        logging.basicConfig(level=logging.INFO)
        return _reported(lambda: orders_main(argv[1:]))
    if len(argv) >= 2 and argv[0] == "db":  # `db upgrade` reads better than `db-upgrade`
        argv = [f"db-{argv[1]}", *argv[2:]]
    if argv and argv[0] in DEV_COMMANDS:
        module_name = DEV_COMMANDS[argv[0]][0]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            print(f"stocksync: '{argv[0]}' is a development command: it needs the devstack package of a "
                  "source checkout", file=sys.stderr)
            return 2
        rest = argv if module_name == "devstack.cli" else argv[1:]
        return int(module.main(rest))
    _load_plugins()
    parser = argparse.ArgumentParser(prog="python -m include.stocksync", description="stocksync")
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, (help_text, arguments, _) in sorted(_COMMANDS.items()):
        arguments(sub.add_parser(name, help=help_text))
    for name, (_, help_text) in DEV_COMMANDS.items():
        sub.add_parser(name, help=f"{help_text} (development)", add_help=False)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return _reported(lambda: _COMMANDS[args.command][2](args))
