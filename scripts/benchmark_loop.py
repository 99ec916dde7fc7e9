"""Benchmark of the other half of the loop: the intraday apply of changed SKUs on a large
shop, and the push of many orders to the WMS.

    PYTHONPATH=. .venv/bin/python scripts/benchmark_loop.py [--skus 1000000] [--changed 10000] [--orders 10000]

It works in a database of its own on the checkout's PostgreSQL cluster ($STOCKSYNC_PG_PORT, as the
demo; dropped at the end, the cluster stopped unless it was already running), starts the WMS
service, seeds a shop in line with the WMS through a real nightly sync (not timed), then measures:

- **intraday**: `--changed` SKUs change in the WMS (receipts through `/_admin/adjust`), then one
  intraday run (`intraday.run_once`: feed walk and staging, validation, plan, apply) with each
  stage's time and the time the stock table was locked;
- **order push**: `--orders` one-line orders placed through `shop.place_order()` (not timed), then
  `order_push.push_orders` sends them all (one POST per order, acknowledgements per batch), at the
  configured batch size: orders/s.

Results go to `artifacts/benchmark/loop.json` and a markdown table on stdout. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import include.stocksync.airflow  # noqa: E402,F401  (hands the report writer down to the pipeline)
from devstack.demo_seed import load_catalog, reset_shop  # noqa: E402
from devstack.local_pg import scratch_database  # noqa: E402
from devstack.local_stack import WmsProcess, free_port  # noqa: E402
from include.stocksync.config.settings import LoopSettings, process_settings  # noqa: E402
from include.stocksync.store.db import connect  # noqa: E402
from include.stocksync.sync import intraday, order_push, pipeline  # noqa: E402

TOKEN = os.environ.setdefault("STOCKSYNC_BENCH_WMS_TOKEN", secrets.token_urlsafe(24))


def session() -> Any:
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def seed(dsn: str, wms: WmsProcess, skus: int) -> float:
    """A shop in line with the WMS, and a real nightly sync applied (the feed's position)."""
    import random

    started = time.perf_counter()
    wms.admin.reset(skus, 5)
    with connect(dsn) as conn:
        reset_shop(conn)
        load_catalog(conn, wms.admin.items(), random.Random(5), drift_share=0.0)
        conn.commit()
    settings = process_settings().for_run({"page_size": 10000, "freeze_mode": "none"})
    run_id = "bench-loop-nightly"
    pipeline.freeze_checkout(dsn, run_id=run_id, dag_id="inventory_nightly_sync", settings=settings)
    pipeline.extract(dsn, run_id=run_id, session=session(), base_url=wms.url)
    pipeline.validate(dsn, run_id=run_id)
    plan = pipeline.merge(dsn, run_id=run_id)
    pipeline.load_stock(dsn, run_id=run_id, plan_table=plan.plan_table)
    pipeline.release_freeze(dsn, run_id=run_id, dag_id="inventory_nightly_sync")
    assert pipeline.get_run(dsn, run_id)["status"] == "applied"
    return time.perf_counter() - started


def bench_intraday(dsn: str, wms: WmsProcess, skus: int, changed: int) -> dict[str, Any]:
    step = max(1, skus // changed)
    items = [{"sku": f"SKU-{i:07d}", "on_hand": 3} for i in range(1, skus + 1, step)][:changed]
    for start in range(0, len(items), 10000):
        r = session().post(f"{wms.url}/_admin/adjust", json={"items": items[start:start + 10000]}, timeout=300)
        r.raise_for_status()
    settings = process_settings()
    settings = settings.model_copy(update={"loop": LoopSettings(**{**settings.loop.model_dump(),
                                                                    "feed_page_size": 10000})})
    started = time.perf_counter()
    summary = intraday.run_once(dsn, settings, run_id="bench-loop-intraday", session=session(), base_url=wms.url)
    total = time.perf_counter() - started
    run = pipeline.get_run(dsn, "bench-loop-intraday")
    assert run["status"] == "applied", run["error"]
    stages = {k: round(v, 3) for k, v in (run["stage_seconds"] or {}).items()}
    return {"skus": skus, "changed_skus": len(items), "events": summary["read"]["feed"]["events"],
            "seconds": round(total, 3), "stages": stages, "rows_written": summary["apply"]["rows_written"],
            "locked_seconds": summary["apply"]["locked_seconds"], "skus_per_second": round(len(items) / total)}


def bench_push(dsn: str, wms: WmsProcess, orders: int, batch: int) -> dict[str, Any]:
    with connect(dsn) as conn:
        conn.execute("SELECT shop.place_order(ARRAY[s.sku], ARRAY[1], 'bench') FROM "
                     "(SELECT sku FROM shop.stock WHERE qty >= 2 ORDER BY sku LIMIT %s) s", (orders,))
        conn.commit()
        placed = conn.execute("SELECT count(*) FROM shop.orders WHERE wms_acknowledged_at IS NULL").fetchone()[0]
    settings = process_settings()
    settings = settings.model_copy(update={"loop": LoopSettings(**{**settings.loop.model_dump(),
                                                                    "order_batch_size": batch})})
    client = order_push.WmsOrders(session(), wms.url, timeout=30)
    started = time.perf_counter()
    result = order_push.push_orders(dsn, client, settings, run_id=f"bench-loop-push-{batch}")
    seconds = time.perf_counter() - started
    assert result.acknowledged == placed, result.as_dict()
    return {"orders": placed, "batch_size": batch, "seconds": round(seconds, 3), "batches": result.batches,
            "orders_per_second": round(placed / seconds)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "artifacts" / "benchmark" / "loop.json")
    args = parser.parse_args()
    with scratch_database("bench_loop") as pg:  # the checkout's cluster, a database of its own
        return run(pg.dsn(), args)


def run(dsn: str, args: argparse.Namespace) -> int:
    wms = WmsProcess(free_port(), TOKEN, skus=10)
    try:
        pipeline.apply_schema(dsn)
        seeded = seed(dsn, wms, args.skus)
        result = {"skus": args.skus, "seed_seconds": round(seeded, 1),
                  "intraday": bench_intraday(dsn, wms, args.skus, args.changed),
                  "push": bench_push(dsn, wms, args.orders, args.batch),
                  "cpus": os.cpu_count()}
    finally:
        wms.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    i, p = result["intraday"], result["push"]
    print(f"| measure | figure |\n| --- | --- |\n"
          f"| intraday apply: {i['changed_skus']} changed SKUs on a {args.skus}-SKU shop | {i['seconds']} s "
          f"({i['skus_per_second']} SKUs/s; stages {i['stages']}; stock locked {i['locked_seconds']} s) |\n"
          f"| order push: {p['orders']} orders, batch {p['batch_size']} | {p['seconds']} s "
          f"({p['orders_per_second']} orders/s) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
