"""stocksync command line for the embedded default stack.

    python -m devstack.cli demo [--skus 2000] [--seed 7] [--reseed] [--freeze-mode full|apply|none]
                                [--source http|file]
    python -m devstack.cli stop

`demo` starts a local PostgreSQL (no Docker) holding two databases, `shop` (the reference
shop) and `stocksync` (stocksync's own tables, the `stocksync_db` connection), the WMS service and
the alert webhook receiver, seeds demo data once (again only with --reseed, or when the WMS it was seeded
against is gone), runs `inventory_nightly_sync` once with `dag.test()`, and prints the
run summary. Running it again reuses everything; the second sync finds nothing to change.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from devstack.demo_seed import WmsAdmin, seed_demo
from devstack.local_pg import LocalPostgresError
from devstack.local_secrets import PRIVATE_UMASK
from devstack.local_stack import LocalStack, LocalStackError, migrate_airflow
from include.stocksync.store.db import connect
from include.stocksync.sync.pipeline import apply_schema, summary
from include.stocksync.ui.report import ordered_stages

DAG_ID = "inventory_nightly_sync"
DEV_SQL = Path(__file__).resolve().parent / "sql"


def _sql(name: str) -> bytes:
    """A development-only statement from `devstack/sql/` (the demo's own bookkeeping)."""
    return (DEV_SQL / f"{name}.sql").read_bytes()


def ensure_seeded(stack: LocalStack, skus: int, seed: int, reseed: bool) -> dict[str, Any] | None:
    """Seed the demo unless the shop is already seeded against this WMS process (the demo's
    bookkeeping lives in stocksync's database, next to the history a reseed empties)."""
    dsn = stack.stocksync_dsn
    wms = WmsAdmin(stack.wms.url, stack.token)
    instance = wms.health()["instance"]
    with connect(dsn) as conn:
        conn.execute(_sql("create_demo_state"))
        state = conn.execute(_sql("select_demo_state")).fetchone()
        conn.commit()
    if not reseed and state == (instance, skus, seed):
        return None
    result = seed_demo(stack.shop_dsn, wms, skus=skus, seed=seed, stocksync_dsn=dsn)
    with connect(dsn) as conn:
        conn.execute(_sql("upsert_demo_state"), {"wms_instance": instance, "skus": skus, "seed": seed})
        conn.commit()
    return result.as_dict()


def store_env(platform: str, stack: LocalStack, seed: int) -> dict[str, str]:
    """`--shop magento2|prestashop`: a store seeded with the WMS's catalog in the dev MariaDB and the
    settings that point Airflow's shop connection at it; stocksync's own database stays the stack's
    (`stocksync_db`)."""
    from devstack.platform_seed import demo_store

    return demo_store(platform, WmsAdmin(stack.wms.url, stack.token).items(), seed)


def run_dag(env: dict[str, str], conf: dict[str, Any] | None = None) -> tuple[str, str]:
    """Run the nightly DAG once in this process; returns (run_id, state). Great Expectations is
    imported first, as each Celery worker of a deployment imports it when it starts
    (include/stocksync/airflow/celery_config.py): the freeze window printed is a worker's, without
    the library's import inside it."""
    os.environ.update(env)
    from airflow.dag_processing.dagbag import DagBag

    import include.stocksync.sync.gx_library  # noqa: F401  (loaded before the run, as on a worker)

    bag = DagBag(dag_folder=env["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    dag_run = dag.test(run_conf=conf or None)
    return dag_run.run_id, str(dag_run.state)


def print_summary(run: dict[str, Any], seeded: dict[str, Any] | None, wall: float, databases: str) -> None:
    stages = run.get("stage_seconds") or {}
    lines = [
        "",
        "stocksync: inventory_nightly_sync run summary",
        f"  run id           {run['run_id']}",
        f"  status           {run['status']}" + (f"  ({run['error']})" if run.get("error") else ""),
        f"  freeze mode      {run['freeze_mode']}   adjustment {run['adjustment_mode']}",
        f"  snapshot         {run['snapshot_id']}",
        f"  SKUs extracted   {run['extracted']}",
        f"  changed          {run['changed']}",
        f"  unchanged        {run['unchanged']}",
        f"  clamped          {run['clamped']}",
        f"  stale            {run['stale']}",
        f"  duplicate        {run['duplicate']}",
        f"  unknown          {run['unknown']}",
        f"  freeze window    {run['freeze_seconds']:.3f} s" if run.get("freeze_seconds") is not None
        else "  freeze window    n/a",
        "  stage durations  " + ", ".join(f"{k} {v:.3f}s" for k, v in ordered_stages(stages)),
        f"  DQ report        {run['report_path']}",
        f"  databases        {databases}",
        f"  wall time        {wall:.1f} s (this command)",
    ]
    if seeded:
        lines.insert(2, f"  demo data        seeded: {json.dumps(seeded)}")
    else:
        lines.insert(2, "  demo data        already seeded (use --reseed to start over)")
    print("\n".join(lines))


def demo(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    stack = LocalStack(wms_skus=args.skus, wms_seed=args.seed).start()
    apply_schema(stack.shop_dsn, stack.stocksync_dsn)
    seeded = ensure_seeded(stack, args.skus, args.seed, args.reseed)
    env = stack.airflow_env()
    migrate_airflow(env)
    conf = {"freeze_mode": args.freeze_mode} if args.freeze_mode else None
    if args.shop != "postgres":
        env.update(store_env(args.shop, stack, args.seed))
    # --- --source: file takes tonight's export of the simulator, dropped in .local/wms-drop ---
    exported = None
    if getattr(args, "source", None) == "file":
        from devstack.file_export import demo_drop

        drop_env, exported = demo_drop(stack.wms.url, stack.token, stack.local_dir / "wms-drop")
        env.update(drop_env)
    elif getattr(args, "source", None) == "http":
        env["STOCKSYNC_WMS_SOURCE"] = "http"
    # --- end: --source ------------------------------------------------------------------------------
    run_id, state = run_dag(env, conf)
    run = summary(stack.stocksync_dsn, run_id)
    print_summary(run, seeded, time.perf_counter() - started, stack.databases())
    if args.shop != "postgres":
        shop = json.loads(env["AIRFLOW_CONN_STOCKSYNC_SHOP"])
        print(f"  shop             {args.shop} store: MariaDB database {shop['schema']} on 127.0.0.1:{shop['port']} "
              "(the demo data line above is the reference shop's)")
    if exported is not None:  # a file-drop demo: say where the file went
        from include.stocksync.sync.file_drop import file_drops_of_run

        for drop in file_drops_of_run(stack.stocksync_dsn, run_id):
            print(f"  WMS file         {drop['data_file']} ({exported.rows} rows): {drop['status']}"
                  + (f" -> {drop['moved_to']}" if drop["moved_to"] else ""))
    return 0 if state == "success" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stocksync", description="stocksync on the embedded default stack")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="start the local stack, seed, run the nightly sync once, print a summary")
    p_demo.add_argument("--skus", type=int, default=2000)
    p_demo.add_argument("--seed", type=int, default=7)
    p_demo.add_argument("--reseed", action="store_true", help="reset the demo shop and WMS first")
    p_demo.add_argument("--freeze-mode", choices=["full", "apply", "none"], default=None)
    p_demo.add_argument("--shop", choices=["postgres", "magento2", "prestashop"], default="postgres",
                        help="the shop: the reference PostgreSQL shop, or a Magento 2 / PrestaShop store in the "
                             "dev MariaDB (devstack/local_mariadb.py), seeded with the WMS's catalog")
    p_demo.add_argument("--source", choices=["http", "file"], default=None,
                        help="the WMS source: its HTTP API, or a file exported from it (default: the config's)")
    sub.add_parser("stop", help="stop the local PostgreSQL, WMS service and webhook receiver")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # everything this process writes (Airflow's metadata DB and task logs under .local/airflow,
    # the DQ reports) is for this user only
    os.umask(PRIVATE_UMASK)
    if args.command == "demo":
        try:
            return demo(args)
        except (LocalPostgresError, LocalStackError) as exc:  # a port taken, a cluster that cannot start
            print(f"stocksync: {exc}", file=sys.stderr)
            return 2
    LocalStack().stop()
    print("stopped the local stack")
    return 0


if __name__ == "__main__":
    sys.exit(main())
