"""stocksync benchmark: 10k to 1M SKUs (10M on request), every stage, freeze windows, baselines.

    bash scripts/benchmark.sh [--sizes 10000,100000,1000000[,10000000]] [--baseline-size 100000]
                              [--baseline-repetitions 5] [--keep-data] [--out artifacts/benchmark]

It works in a database of its own (`bench`) on the checkout's PostgreSQL cluster, the demo's, on
$STOCKSYNC_PG_PORT (default 55432; two checkouts side by side set two ports). The database is
dropped at the end (unless --keep-data) and the cluster stopped unless it was already running; the
WMS simulator and the webhook receiver it starts stop with it.

For each size it seeds the WMS service and a shop that was in line with the WMS at the
last sync, then moves about 3% of the SKUs in the WMS and puts about 1% of SKUs on
unsent in-window orders before each measured run. It measures, in a fresh process per
size (so peak RSS is per size):

- the nightly DAG end to end with `dag.test()`, once per freeze mode (full, apply, none):
  wall time, stage times, freeze window;
- each stage on its own (extract, validate, merge, load), calling the same functions the
  tasks call, without Airflow around them;
- extraction SKUs/s and end-to-end SKUs/s, peak RSS of the process running the tasks;
- how long a step's heartbeat takes to stop while the step holds the run's row.

At the baseline size it also times, in each of `--baseline-repetitions` fresh nights, our load
step and two naive loaders writing the same new quantities: one UPDATE per SKU committed on its
own, and one UPDATE per SKU through `executemany` in one transaction, and prints the ratios
(min / median / max). Results go to
`<out>/results.json`, the chart to `<out>/stages.png`. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import include.stocksync.airflow  # noqa: E402,F401  (hands the report writer down to the pipeline)
from devstack.demo_seed import WmsAdmin, reset_shop  # noqa: E402
from devstack.local_pg import LOCAL_DIR, LocalPostgres, scratch_database  # noqa: E402
from devstack.local_stack import (  # noqa: E402
    WmsProcess,
    airflow_env,
    free_port,
    migrate_airflow,
    without_stocksync_connection,
)
from include.stocksync.config.settings import process_settings  # noqa: E402
from include.stocksync.store.db import connect  # noqa: E402
from include.stocksync.sync import pipeline  # noqa: E402

# random per run (workers inherit it from the environment): no token of ours is a constant
TOKEN = os.environ.setdefault("STOCKSYNC_BENCH_WMS_TOKEN", secrets.token_urlsafe(24))
STAGES = ("extract", "validate", "merge", "load")
MODES = ("none", "apply", "full")  # the first dag.test in a process pays ~5 s of Airflow start-up


# --------------------------------------------------------------------------- seeding
def requests_session() -> Any:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    return session


def seed_synced_shop(dsn: str, wms: WmsAdmin, wms_url: str, skus: int, seed: int) -> None:
    """WMS with `skus` SKUs and a shop that matches it (as after a previous sync)."""
    wms.reset(skus, seed)
    settings = process_settings().for_run({"page_size": 10000})
    with connect(dsn) as conn:
        reset_shop(conn)
        # the catalog first (the simulator's names: SKU-0000001 ... SKU-9999999, SKU-10000000): the
        # walk is bounded by it
        conn.execute("INSERT INTO shop.products (sku, name) SELECT s, 'Product ' || s FROM (SELECT 'SKU-' || "
                     "CASE WHEN n < 10000000 THEN lpad(n::text, 7, '0') ELSE n::text END AS s "
                     "FROM generate_series(1, %s) n) c", (skus,))
        conn.commit()
    pipeline.open_run(dsn, run_id="bench-seed", dag_id="bench", settings=settings)
    result = pipeline.extract(dsn, run_id="bench-seed", session=requests_session(),
                              base_url=wms_url)
    with connect(dsn) as conn:
        raw = f'stocksync."{result.staging_table}"'
        conn.execute(f"INSERT INTO shop.stock (sku, qty, wms_seq) SELECT sku, available::int, seq::bigint FROM {raw}")
        conn.execute(f"DROP TABLE {raw}")
        conn.execute("DELETE FROM stocksync.sync_runs WHERE run_id = 'bench-seed'")
        conn.commit()
    with connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE shop.stock")
        conn.execute("VACUUM ANALYZE shop.products")


def perturb(dsn: str, wms: WmsAdmin, skus: int, rng: random.Random, change_share: float = 0.03,
            order_share: float = 0.01) -> None:
    """Move ~3% of SKUs in the WMS and put ~1% of SKUs on unsent in-window orders. The orders of
    the night before reached the WMS meanwhile (orders_to_wms runs every 5 minutes) and were
    shipped: their SKUs' WMS stock is what the shop has (the last sync subtracted them), and the
    orders are acknowledged, so the next snapshot counts them. Left unsent, they piled up night
    after night: 9% of SKUs had demand by the last baseline repetition at 100k, not the 1% described."""
    with connect(dsn) as conn:
        shipped = conn.execute(
            "SELECT s.sku, s.qty FROM shop.stock s WHERE s.sku IN (SELECT l.sku FROM shop.orders o "
            "JOIN shop.order_lines l ON l.order_id = o.order_id WHERE o.wms_acknowledged_at IS NULL)").fetchall()
        for start in range(0, len(shipped), 20000):
            wms.set_items([{"sku": sku, "on_hand": qty, "non_usable": 0, "allocated": 0}
                           for sku, qty in shipped[start:start + 20000]])
        conn.execute("UPDATE shop.orders SET wms_acknowledged_at = now() WHERE wms_acknowledged_at IS NULL")
        conn.commit()
    with connect(dsn, autocommit=True) as conn:
        # the hours between two nights: autovacuum has been through what the last one wrote. Here
        # the nights are seconds apart, so its workers could still be catching up beside the next
        # measured night (our 100k load showed one outlier in five, 0.20-0.26 s against 0.15 s)
        conn.execute("VACUUM ANALYZE shop.stock, shop.orders, shop.order_lines, stocksync.sku_audit")
    changed = rng.sample(range(1, skus + 1), k=max(1, int(skus * change_share)))
    for start in range(0, len(changed), 20000):  # 20k items at a time: the process's peak RSS is measured
        wms.set_items([{"sku": f"SKU-{n:07d}", "on_hand": rng.randint(50, 500), "non_usable": 0, "allocated": 0}
                       for n in changed[start:start + 20000]])
    ordered = rng.sample(range(1, skus + 1), k=max(1, int(skus * order_share)))
    with connect(dsn) as conn:
        # one unsent order per SKU, placed as the shop's checkout would (stock decremented);
        # quantities never exceed the stock the shop has
        conn.execute("""
            WITH picked AS (
                SELECT s.sku, least(s.qty, 1 + (abs(hashtext(s.sku)) %% 2)) AS qty
                  FROM shop.stock s WHERE s.sku = ANY(%(skus)s) AND s.qty > 0),
            new_orders AS (
                INSERT INTO shop.orders (status, customer_ref)
                SELECT 'placed', sku FROM picked RETURNING order_id, customer_ref),
            lines AS (
                INSERT INTO shop.order_lines (order_id, sku, qty)
                SELECT o.order_id, p.sku, p.qty FROM new_orders o JOIN picked p ON p.sku = o.customer_ref)
            UPDATE shop.stock s SET qty = s.qty - p.qty FROM picked p WHERE s.sku = p.sku
        """, {"skus": [f"SKU-{n:07d}" for n in ordered]})
        conn.commit()


# --------------------------------------------------------------------------- one size
def measure_size(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in its own process: DAG runs per freeze mode, then each stage on its own."""
    env = json.loads(Path(args.env_file).read_text())
    os.environ.update(env)
    dsn, wms_url, skus = os.environ["STOCKSYNC_BENCH_DSN"], args.wms_url, args.worker
    wms = WmsAdmin(wms_url, TOKEN)
    rng = random.Random(skus)
    out: dict[str, Any] = {"skus": skus, "dag_runs": {}, "stages": {}}

    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=env["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("inventory_nightly_sync")
    for mode in MODES:
        perturb(dsn, wms, skus, rng)
        started = time.perf_counter()
        dag_run = dag.test(run_conf={"freeze_mode": mode, "page_size": 10000})
        wall = time.perf_counter() - started
        run = pipeline.get_run(dsn, dag_run.run_id)
        if run["status"] != "applied":
            raise RuntimeError(f"{mode} run ended {run['status']}: {run['error']}")
        out["dag_runs"][mode] = {
            "wall_seconds": round(wall, 3),
            "stage_seconds": {k: round(v, 3) for k, v in run["stage_seconds"].items()},
            "freeze_seconds": round(run["freeze_seconds"], 3),
            "changed": run["changed"], "unchanged": run["unchanged"], "clamped": run["clamped"],
            "apply_details": run["apply_details"],
        }
        print(f"  {skus:>9,} SKUs  dag.test freeze={mode:<5} {wall:7.2f}s  freeze window "
              f"{run['freeze_seconds']:.3f}s  changed {run['changed']:,}", flush=True)

    perturb(dsn, wms, skus, rng)
    settings = process_settings().for_run({"page_size": 10000, "freeze_mode": "apply"})
    run_id = f"bench-stages-{skus}"
    pipeline.open_run(dsn, run_id=run_id, dag_id="bench", settings=settings)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    extracted = pipeline.extract(dsn, run_id=run_id, session=requests_session(),
                                 base_url=wms_url)
    timings["extract"] = time.perf_counter() - t
    t = time.perf_counter()
    pipeline.validate(dsn, run_id=run_id)
    timings["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    plan = pipeline.merge(dsn, run_id=run_id)
    timings["merge"] = time.perf_counter() - t
    t = time.perf_counter()
    applied = pipeline.load(dsn, run_id=run_id, plan_table=plan.plan_table)
    timings["load"] = time.perf_counter() - t
    released = pipeline.release_freeze(dsn, run_id=run_id, dag_id="bench")
    out["stages"] = {k: round(v, 3) for k, v in timings.items()}
    out["stage_apply"] = applied.as_dict()
    out["stage_freeze_seconds_apply_mode"] = released["freeze_seconds"]
    out["extract_skus_per_second"] = round(extracted.rows / timings["extract"])
    # end to end: the nightly as shipped (freeze mode full)
    out["end_to_end_skus_per_second"] = round(skus / out["dag_runs"]["full"]["wall_seconds"])
    out["wms_alone_skus_per_second"] = wms_walk_rate(wms_url)
    out["heartbeat_stop_seconds"] = round(heartbeat_stop_seconds(dsn, run_id), 3)
    print(f"  {skus:>9,} SKUs  stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
          + f"; extract {out['extract_skus_per_second']:,} SKUs/s (the WMS simulator alone serves "
          f"{out['wms_alone_skus_per_second']:,} SKUs/s)", flush=True)

    if skus == args.baseline_size:
        out["baselines"] = baseline_repetitions(dsn, wms, wms_url, skus, rng, args.baseline_repetitions)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def heartbeat_stop_seconds(dsn: str, run_id: str, interval: float = 0.1) -> float:
    """How long a step's heartbeat thread takes to stop while the step's transaction holds the
    run's row (the apply holds it for its whole transaction): a beat that waited for the commit
    held the step's end up to the thread's join timeout (interval + 10 s)."""
    from include.stocksync.runs.lifecycle import Heartbeat

    with connect(dsn) as step:
        step.execute("SELECT status FROM stocksync.sync_runs WHERE run_id = %s FOR UPDATE", (run_id,))
        beat = Heartbeat(dsn, run_id, interval).__enter__()
        time.sleep(interval * 5)  # a few beats fall while the row is held
        started = time.perf_counter()
        beat.stop()
        stopped = time.perf_counter() - started
        step.rollback()
    return stopped


def wms_walk_rate(wms_url: str, page_size: int = 10000) -> int:
    """SKUs/s of the WMS simulator alone: a walk that only reads each page's bytes and its cursor
    (orjson), no checks, no staging. Far above the extract's rate, the extract measures our client."""
    import orjson

    session = requests_session()
    cursor, items = None, 0
    started = time.perf_counter()
    while True:
        params: dict[str, Any] = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
        with session.get(f"{wms_url}/v1/stock", params=params, stream=True, timeout=60) as response:
            response.raise_for_status()
            page = orjson.loads(b"".join(response.iter_content(chunk_size=1 << 20)))
        items += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return round(items / (time.perf_counter() - started))


BASELINE_FIGURES = ("our_load_seconds", "per_sku_commit_seconds", "executemany_one_txn_seconds",
                    "ratio_per_sku_commit_to_ours", "ratio_executemany_to_ours")


def baseline_repetitions(dsn: str, wms: WmsAdmin, wms_url: str, skus: int, rng: random.Random,
                         repetitions: int) -> dict[str, Any]:
    """`repetitions` times: a fresh night (WMS moved, orders placed), our load step timed as the
    DAG runs it (pipeline.load, after extract, validate and merge), then both naive loaders on
    the same plan; the stock table compacted (VACUUM FULL) before the next. Min / median / max of each figure."""
    import statistics

    runs = []
    for repetition in range(repetitions):
        perturb(dsn, wms, skus, rng)
        settings = process_settings().for_run({"page_size": 10000})  # the shipped freeze mode (full)
        run_id = f"bench-baseline-{skus}-{repetition}"
        pipeline.open_run(dsn, run_id=run_id, dag_id="bench", settings=settings)
        pipeline.extract(dsn, run_id=run_id, session=requests_session(), base_url=wms_url)
        pipeline.validate(dsn, run_id=run_id)
        plan = pipeline.merge(dsn, run_id=run_id)
        t = time.perf_counter()
        pipeline.load(dsn, run_id=run_id, plan_table=plan.plan_table)
        ours = time.perf_counter() - t
        pipeline.release_freeze(dsn, run_id=run_id, dag_id="bench")
        runs.append(baselines(dsn, plan.plan_table, ours))
        with connect(dsn, autocommit=True) as conn:
            # the naive loaders rewrote every stock row twice, far more churn than a night: the
            # next repetition starts from a compact table, as autovacuum keeps a real one
            conn.execute("VACUUM FULL ANALYZE shop.stock")
    summary: dict[str, Any] = {"rows": runs[0]["rows"], "repetitions": runs}
    for figure in BASELINE_FIGURES:
        values = [r[figure] for r in runs]
        summary[figure] = {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values)}
    return summary


def baselines(dsn: str, plan_table: str, our_load_seconds: float) -> dict[str, Any]:
    """Naive loaders pushing every SKU's new quantity, as per-SKU integrations do."""
    with connect(dsn) as conn:
        rows = conn.execute(f'SELECT new_qty, sku FROM stocksync."{plan_table}" WHERE new_qty IS NOT NULL '
                            "ORDER BY sku").fetchall()
    update = "UPDATE shop.stock SET qty = %s, updated_at = now() WHERE sku = %s"
    with connect(dsn, autocommit=True) as conn:
        t = time.perf_counter()
        for row in rows:  # one statement, one commit per SKU
            conn.execute(update, row)
        per_commit = time.perf_counter() - t
    with connect(dsn) as conn:
        t = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(update, rows)
        conn.commit()
        executemany = time.perf_counter() - t
    result = {
        "rows": len(rows),
        "per_sku_commit_seconds": round(per_commit, 3),
        "executemany_one_txn_seconds": round(executemany, 3),
        "our_load_seconds": round(our_load_seconds, 3),
        "ratio_per_sku_commit_to_ours": round(per_commit / our_load_seconds, 1),
        "ratio_executemany_to_ours": round(executemany / our_load_seconds, 1),
    }
    print(f"  baselines at {len(rows):,} SKUs: per-SKU commit {per_commit:.2f}s "
          f"({result['ratio_per_sku_commit_to_ours']}x ours), executemany {executemany:.2f}s "
          f"({result['ratio_executemany_to_ours']}x ours), our load {our_load_seconds:.2f}s", flush=True)
    return result


# --------------------------------------------------------------------------- report
def growth_exponents(results: list[dict[str, Any]], last_step: bool = False) -> dict[str, float]:
    """Slope of log(time) against log(SKUs) between the smallest and largest size, or (`last_step`)
    between the two largest, where fixed start-up costs no longer flatter the slope."""
    if len(results) < 2:
        return {}
    low, high = (results[-2] if last_step else results[0]), results[-1]
    exponents = {}
    for stage in (*STAGES, "end_to_end"):
        a, b = _stage_time(low, stage), _stage_time(high, stage)
        exponents[stage] = round(math.log(b / a) / math.log(high["skus"] / low["skus"]), 2)
    return exponents


def _stage_time(result: dict[str, Any], stage: str) -> float:
    if stage == "end_to_end":
        return float(result["dag_runs"]["full"]["wall_seconds"])  # the shipped freeze mode
    return float(result["stages"][stage])


def chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["skus"] for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for stage in (*STAGES, "end_to_end"):
        label = "nightly DAG end to end (full mode)" if stage == "end_to_end" else stage
        ax.plot(sizes, [_stage_time(r, stage) for r in results], marker="o", label=label)
    for mode in ("full", "apply"):
        ax.plot(sizes, [r["dag_runs"][mode]["freeze_seconds"] for r in results], marker="s", linestyle="--",
                label=f"freeze window ({mode} mode)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("SKUs")
    ax.set_ylabel("seconds")
    ax.set_title("stocksync: time per stage against catalog size (log-log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(results: list[dict[str, Any]]) -> str:
    header = (f"{'SKUs':>10} | {'extract':>7} | {'validate':>8} | {'merge':>6} | {'load':>6} | {'DAG full':>8} | "
              f"{'DAG apply':>9} | "
              f"{'freeze full':>11} | {'freeze apply':>12} | {'freeze none':>11} | {'extract/s':>10} | "
              f"{'WMS alone/s':>11} | "
              f"{'e2e/s':>8} | {'peak RSS':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        d = r["dag_runs"]
        lines.append(
            f"{r['skus']:>10,} | {r['stages']['extract']:>6.2f}s | {r['stages']['validate']:>7.2f}s | "
            f"{r['stages']['merge']:>5.2f}s | {r['stages']['load']:>5.2f}s | {d['full']['wall_seconds']:>7.2f}s | "
            f"{d['apply']['wall_seconds']:>8.2f}s | "
            f"{d['full']['freeze_seconds']:>10.3f}s | {d['apply']['freeze_seconds']:>11.3f}s | "
            f"{d['none']['freeze_seconds']:>10.3f}s | {r['extract_skus_per_second']:>10,} | "
            f"{r.get('wms_alone_skus_per_second', 0):>11,} | "
            f"{r['end_to_end_skus_per_second']:>8,} | {r['peak_rss_mb']:>6.0f}MB")
    return "\n".join(lines)


# the performance targets the README states: (what, size it applies to, figure, limit, "max" or "min")
TARGETS = (
    ("nightly DAG end to end (full mode)", 1_000_000, lambda r: r["dag_runs"]["full"]["wall_seconds"], 12.0, "max"),
    ("freeze window, full mode", 1_000_000, lambda r: r["dag_runs"]["full"]["freeze_seconds"], 10.0, "max"),
    ("freeze window, apply mode", 1_000_000, lambda r: r["dag_runs"]["apply"]["freeze_seconds"], 0.3, "max"),
    ("validate", 1_000_000, lambda r: r["stages"]["validate"], 2.5, "max"),
    ("load", 1_000_000, lambda r: r["stages"]["load"], 3.0, "max"),
    ("extract SKUs/s", 1_000_000, lambda r: r["extract_skus_per_second"], 500_000, "min"),
    ("heartbeat stop with the run's row held", 1_000_000, lambda r: r.get("heartbeat_stop_seconds", 0.0), 1.0, "max"),
    ("peak RSS MB", 1_000_000, lambda r: r["peak_rss_mb"], 1024, "max"),
    ("nightly DAG end to end (full mode)", 10_000_000, lambda r: r["dag_runs"]["full"]["wall_seconds"], 120.0, "max"),
    ("peak RSS MB", 10_000_000, lambda r: r["peak_rss_mb"], 2048, "max"),
)


def target_lines(summary: dict[str, Any]) -> list[str]:
    """Each performance target whose size was measured: the figure, the limit, met or missed."""
    lines = []
    by_size = {r["skus"]: r for r in summary["results"]}
    for what, size, figure, limit, kind in TARGETS:
        if size in by_size:
            value = figure(by_size[size])
            met = value <= limit if kind == "max" else value >= limit
            lines.append(f"  {'met   ' if met else 'MISSED'} {what} at {size:,}: {value:,} ({kind} {limit:,})")
    for stage, k in summary["growth_exponents"].items():  # the target: smallest to largest size
        lines.append(f"  {'met   ' if k <= 1.05 else 'MISSED'} growth exponent {stage}: {k} (max 1.05)")
    for stage, k in summary.get("growth_exponents_last_step", {}).items():  # no target: what it shows
        lines.append(f"  (info) growth exponent {stage} between the two largest sizes: {k}")
    for r in summary["results"]:
        if r["skus"] != 100_000:  # the targets' size (the default --baseline-size)
            continue
        for rep in r.get("baselines", {}).get("repetitions", []):
            for figure, limit in (("ratio_executemany_to_ours", 5), ("ratio_per_sku_commit_to_ours", 50)):
                verdict = "met   " if rep[figure] >= limit else "MISSED"
                lines.append(f"  {verdict} {figure} at {rep['rows']:,}: {rep[figure]} (min {limit})")
    return lines


# --------------------------------------------------------------------------- orchestration
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--baseline-size", type=int, default=100000)
    parser.add_argument("--baseline-repetitions", type=int, default=5)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "artifacts" / "benchmark")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the 'bench' database on the checkout's cluster (dropped by default)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--wms-url", help=argparse.SUPPRESS)
    parser.add_argument("--env-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result_file).write_text(json.dumps(measure_size(args), default=str))
        return 0

    os.umask(0o077)  # env.json below holds the connections' passwords
    args.out.mkdir(parents=True, exist_ok=True)
    # the checkout's cluster (the demo's port setting), a database of the benchmark's own
    with scratch_database("bench", keep=args.keep_data) as pg:
        return _run_sizes(args, pg)


def _run_sizes(args: argparse.Namespace, pg: LocalPostgres) -> int:
    sizes = [int(s) for s in args.sizes.split(",")]
    dsn = pg.dsn()
    print(f"PostgreSQL: database 'bench' of the checkout's cluster on port {pg.port}", flush=True)
    pipeline.apply_schema(dsn)

    from devstack.webhook_receiver import make_server
    wms_process = WmsProcess(free_port(), TOKEN, skus=10)
    hook_port = free_port()
    hook = make_server("127.0.0.1", hook_port, None)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    env_file = args.out / "env.json"
    results = []
    try:  # every server started here ends with the benchmark
        env = airflow_env(LOCAL_DIR / "bench-airflow", shop_dsn=dsn, wms_url=wms_process.url, token=TOKEN,
                          webhook_url=f"http://127.0.0.1:{hook_port}")
        env["STOCKSYNC_REPORTS_DIR"] = str(args.out / "reports")
        env["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
        migrate_airflow(env)
        env_file.write_text(json.dumps(env))
        for skus in sizes:
            print(f"seeding {skus:,} SKUs ...", flush=True)
            t = time.perf_counter()
            seed_synced_shop(dsn, wms_process.admin, wms_process.url, skus, seed=skus)
            print(f"  seeded in {time.perf_counter() - t:.1f}s", flush=True)
            result_file = args.out / f"result_{skus}.json"
            # the DSN carries the password: environment, not command line (ps shows that to everyone)
            subprocess.run([sys.executable, __file__, "--worker", str(skus), "--wms-url",
                            wms_process.url, "--env-file", str(env_file), "--result-file", str(result_file),
                            "--baseline-size", str(args.baseline_size),
                            "--baseline-repetitions", str(args.baseline_repetitions)],
                           check=True, env={**without_stocksync_connection(os.environ), **env,
                                            "STOCKSYNC_BENCH_DSN": dsn})
            results.append(json.loads(result_file.read_text()))
    finally:
        wms_process.stop()
        hook.shutdown()
        hook.server_close()
        env_file.unlink(missing_ok=True)

    summary = {"results": results, "growth_exponents": growth_exponents(results),
               "growth_exponents_last_step": growth_exponents(results, last_step=True),
               "machine": {"cores": os.cpu_count()}}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2, default=str))
    chart(results, args.out / "stages.png")
    print()
    print(table(results))
    print()
    print("growth exponent (time ~ SKUs^k, smallest to largest size):", json.dumps(summary["growth_exponents"]))
    print("growth exponent between the two largest sizes:", json.dumps(summary["growth_exponents_last_step"]))
    for r in results:
        if "baselines" in r:
            b = r["baselines"]
            print(f"baselines at {b['rows']:,} SKUs, {len(b['repetitions'])} repetitions (min / median / max):")
            for figure in BASELINE_FIGURES:
                f = b[figure]
                print(f"  {figure:<30} {f['min']:>8} {f['median']:>8} {f['max']:>8}")
    print("performance targets on this machine:")
    print("\n".join(target_lines(summary)))
    print(f"\nresults: {args.out / 'results.json'}\nchart:   {args.out / 'stages.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
