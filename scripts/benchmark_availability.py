"""Availability service benchmark: latency and throughput of the inventory script on 127.0.0.1.

    bash scripts/benchmark_availability.sh [--skus 10000] [--clients 100] [--requests 20000] \\
        [--rate 1000] [--paced-seconds 15] [--time-limit 60] [--workers 2] [--wms-budget-ms 100] \\
        [--overload-clients 128] [--overload-seconds 20] [--max-in-flight N]

Not a test: it measures, it asserts nothing. It works in a database of its own on the checkout's
PostgreSQL cluster ($STOCKSYNC_PG_PORT, as the demo; dropped at the end, the cluster stopped unless
it was already running), starts the WMS simulator with `--skus` SKUs and a shop catalog in line with
it, as after a nightly sync (same quantities and WMS sequences; 10% of the items sold as variants
through stocksync.sku_map), then the service as in production (`python -m
include.stocksync.availability`, uvicorn with `--workers` processes), once from the shop's number
and once in live mode (every request also asks the WMS, within `--wms-budget-ms`; a mover changes 20
WMS SKUs a second, so some answers are live write-backs).

Requests are shaped as the platform sends them (`.catalog`, `.code`, `.id`, `.quantity`,
`.price`, then the options). Per mode, three phases, each with concurrent keep-alive connections
from one uvloop process (a small raw HTTP/1.1 client: the load generator shares the 2 cores with
the service, the database and the WMS, so it has to be cheap):

- saturation: closed loop, `--requests` requests (or `--time-limit` seconds, whichever first):
  the throughput the machine gives, and the latency at that throughput;
- paced: an open-loop schedule of `--rate` requests/s for `--paced-seconds` seconds; latency is
  measured from each request's scheduled time (so a stall counts against us even while the
  clients wait: no coordinated omission): the latency at the target load;
- overload: `--overload-clients` connections (128) flat out for `--overload-seconds`, more than
  the machine can answer in time: a worker with `MAX_IN_FLIGHT` requests in flight answers the
  next one unknown at once (cause `overloaded`). Reported: the latency of every answer, of the
  answered ones alone, and the shed rate (the share of answers that were shed).

The service runs with its shipped settings except the rate limit (off: every request comes from
127.0.0.1), uvicorn's connection bound (2000) and what the options name (`--max-in-flight`,
default: the shipped value).

Targets (the issue's): >= 1,000 req/s and p99 <= 50 ms from the shop's number; p99 <= WMS budget +
20 ms in live mode. Prints a markdown table and writes `<out>/availability.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from devstack.availability_process import AvailabilityProcess, new_secret  # noqa: E402
from devstack.demo_seed import WmsAdmin, load_catalog, reset_shop  # noqa: E402
from devstack.local_pg import scratch_database  # noqa: E402
from devstack.local_stack import WmsProcess, free_port  # noqa: E402
from include.stocksync.availability.skus import upsert_mapping  # noqa: E402
from include.stocksync.store.db import connect  # noqa: E402

TOKEN = os.environ.setdefault("STOCKSYNC_BENCH_WMS_TOKEN", secrets.token_urlsafe(24))
SIZES = ("S", "M", "L", "XL")
SHED = "unknown (overloaded)"  # X-Inventory-Status and -Cause of an answer shed by an overloaded worker


# --------------------------------------------------------------------------- set-up
def apply_schema(dsn: str) -> None:
    """The reference shop schema and stocksync's tables (the benchmark's own cluster)."""
    from include.stocksync.sync.pipeline import apply_schema as create

    create(dsn)


def seed(dsn: str, wms: WmsAdmin, skus: int) -> list[bytes]:
    """The shop in line with the WMS; returns the request bodies the clients cycle through."""
    rng = random.Random(7)
    wms.reset(skus, 7)
    items = wms.items()
    names = [item["sku"] for item in items]
    variants = names[: len(names) // 10]  # 10% sold as variants of "TEE-<n>" in four sizes
    with connect(dsn) as conn:
        reset_shop(conn)
        conn.execute("TRUNCATE stocksync.sku_map, stocksync.availability_stats")
        load_catalog(conn, items, rng, drift_share=0.0)
        # as after a nightly sync: the shop has applied the WMS's current state (its seq)
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE wms_seq (sku text PRIMARY KEY, seq bigint) ON COMMIT DROP")
            with cur.copy("COPY wms_seq (sku, seq) FROM STDIN") as copy:
                for item in items:
                    copy.write_row((item["sku"], item["seq"]))
            cur.execute("UPDATE shop.stock s SET wms_seq = w.seq FROM wms_seq w WHERE w.sku = s.sku")
        for i, name in enumerate(variants):
            upsert_mapping(conn, f"TEE-{i // 4}", {"Size": SIZES[i % 4], "Color": "Navy"}, name)
        conn.commit()
    with connect(dsn, autocommit=True) as conn:
        for table in ("shop.products", "shop.stock", "stocksync.sku_map"):
            conn.execute(f"VACUUM ANALYZE {table}")
    bodies = []
    for _ in range(5000):
        if rng.random() < 0.1 and variants:
            i = rng.randrange(len(variants))
            fields = [(".catalog", "bench"), (".code", f"TEE-{i // 4}"), (".id", f"tee-{i // 4}"),
                      (".quantity", "1"), (".price", "19.90"), ("Size", SIZES[i % 4]), ("Color", "Navy")]
        else:
            name = rng.choice(names)
            fields = [(".catalog", "bench"), (".code", name), (".id", name.lower()),
                      (".quantity", str(rng.randint(1, 3))), (".price", "9.90")]
        bodies.append(urlencode(fields).encode())
    return bodies


# --------------------------------------------------------------------------- load generator
@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds
    answered: list[float] = field(default_factory=list)  # seconds, answers that were not shed
    statuses: dict[str, int] = field(default_factory=dict)  # X-Inventory-Status (or the HTTP status)
    live: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0
    cpu_seconds: float = 0.0  # the load generator's own CPU time: it shares the cores with the service

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        answered = sorted(self.answered)

        def pct(q: float, values: list[float] = lat) -> float | None:
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2) if values else None

        seconds = self.ended - self.started
        shed = len(lat) - len(answered)
        return {"phase": self.name, "requests": len(lat), "errors": self.errors, "seconds": round(seconds, 2),
                "throughput_rps": round(len(lat) / seconds, 1) if seconds > 0 else None,
                "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
                "max_ms": pct(1.0), "shed": shed, "shed_rate": round(shed / len(lat), 4) if lat else None,
                "answered_rps": round(len(answered) / seconds, 1) if seconds > 0 else None,
                "answered_p50_ms": pct(0.50, answered), "answered_p90_ms": pct(0.90, answered),
                "answered_p99_ms": pct(0.99, answered),
                "generator_cores": round(self.cpu_seconds / seconds, 2) if seconds > 0 else None,
                "statuses": dict(sorted(self.statuses.items())), "live": dict(sorted(self.live.items())),
                # other work on the machine skews every figure: the 1-minute load average when it ended
                "loadavg_1m": round(os.getloadavg()[0], 2)}


def request_bytes(path: str, secret: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Inventory-Secret: {secret}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def one_client(port: int, requests_: list[bytes], phase: Phase, next_slot: Any, deadline: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            slot = next_slot()
            if slot is None or time.perf_counter() > deadline:
                return
            index, scheduled = slot
            now = time.perf_counter()
            if scheduled > now:
                await asyncio.sleep(scheduled - now)
            start = scheduled if scheduled > 0 else time.perf_counter()
            writer.write(requests_[index % len(requests_)])
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                length = int(lower.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
                phase.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latency = time.perf_counter() - start
            phase.latencies.append(latency)
            status = header(lower, b"x-inventory-status") or lower[9:12].decode()
            if status in ("unknown", "rejected"):
                status = f"{status} ({header(lower, b'x-inventory-cause')})"
            if status != SHED:
                phase.answered.append(latency)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
            live = header(lower, b"x-inventory-live")
            if live:
                key = live.split(";")[0]
                phase.live[key] = phase.live.get(key, 0) + 1
    finally:
        writer.close()


def header(head: bytes, name: bytes) -> str | None:
    marker = b"\r\n" + name + b": "
    if marker not in head:
        return None
    return head.split(marker, 1)[1].split(b"\r\n", 1)[0].decode("latin-1")


async def run_phase(name: str, port: int, requests_: list[bytes], *, clients: int, total: int, time_limit: float,
                    rate: float | None) -> Phase:
    phase = Phase(name)
    counter = iter(range(total))
    cpu = time.process_time()
    phase.started = time.perf_counter()
    deadline = phase.started + time_limit

    def next_slot() -> tuple[int, float] | None:
        index = next(counter, None)
        if index is None:
            return None
        return index, (phase.started + index / rate) if rate else 0.0

    await asyncio.gather(*(one_client(port, requests_, phase, next_slot, deadline) for _ in range(clients)))
    phase.ended = time.perf_counter()
    phase.cpu_seconds = time.process_time() - cpu
    return phase


def load(port: int, requests_: list[bytes], args: argparse.Namespace, label: str) -> list[dict[str, Any]]:
    import uvloop

    async def both() -> list[Phase]:
        warm = await run_phase("warm-up", port, requests_, clients=args.clients, total=2000, time_limit=20, rate=None)
        del warm
        saturation = await run_phase(f"{label}: saturation", port, requests_, clients=args.clients,
                                     total=args.requests, time_limit=args.time_limit, rate=None)
        paced = await run_phase(f"{label}: paced {args.rate:g}/s", port, requests_, clients=args.clients,
                                total=int(args.rate * args.paced_seconds), time_limit=args.paced_seconds + 30,
                                rate=args.rate)
        overload = await run_phase(f"{label}: overload, {args.overload_clients} connections", port, requests_,
                                   clients=args.overload_clients, total=10**9, time_limit=args.overload_seconds,
                                   rate=None)
        return [saturation, paced, overload]

    return [phase.summary() for phase in uvloop.run(both())]


# --------------------------------------------------------------------------- main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20_000, help="saturation phase: request count")
    parser.add_argument("--time-limit", type=float, default=60.0, help="saturation phase: at most this long (s)")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced phase: requests per second")
    parser.add_argument("--paced-seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=4, help="database connections per worker")
    parser.add_argument("--wms-budget-ms", type=int, default=100)
    parser.add_argument("--overload-clients", type=int, default=128, help="overload phase: connections")
    parser.add_argument("--overload-seconds", type=float, default=20.0)
    parser.add_argument("--max-in-flight", type=int, default=None, help="default: the shipped MAX_IN_FLIGHT")
    parser.add_argument("--modes", default="shop,live")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "artifacts" / "benchmark")
    args = parser.parse_args()

    with scratch_database("availability_bench") as pg:  # the checkout's cluster, a database of its own
        return run(pg.dsn(), args)


def run(dsn: str, args: argparse.Namespace) -> int:
    apply_schema(dsn)
    wms_process = WmsProcess(free_port(), TOKEN, skus=10)
    results: list[dict[str, Any]] = []
    try:
        bodies = seed(dsn, wms_process.admin, args.skus)
        secret = new_secret()
        requests_ = [request_bytes("/inventory", secret, body) for body in bodies]
        for mode in args.modes.split(","):
            settings = {"SHOP_DSN": dsn, "SECRET": secret, "RATE_LIMIT_PER_SECOND": "0",
                        "DB_POOL_SIZE": str(args.pool_size), "MAX_CONCURRENCY": "2000"}
            if args.max_in_flight is not None:
                settings["MAX_IN_FLIGHT"] = str(args.max_in_flight)
            if mode == "live":
                settings.update({"LIVE_MODE": "true", "WMS_URL": wms_process.url, "WMS_TOKEN": TOKEN,
                                 "WMS_BUDGET_MS": str(args.wms_budget_ms)})
            stop = threading.Event()
            mover = threading.Thread(target=move_wms, args=(wms_process.admin, args.skus, stop), daemon=True)
            with AvailabilityProcess(settings, workers=args.workers) as service:
                if mode == "live":
                    mover.start()
                print(f"[{mode}] service on {service.url} ({args.workers} workers); log {service.log_path}",
                      file=sys.stderr, flush=True)
                results += [{**r, "mode": mode} for r in load(service.port, requests_, args, mode)]
                stop.set()
    finally:
        wms_process.stop()
    write(results, args)
    return 0


def move_wms(wms: WmsAdmin, skus: int, stop: threading.Event) -> None:
    """Live mode: 20 WMS SKUs a second get a new state (their seq moves), as goods arrive and ship."""
    rng = random.Random(3)
    while not stop.wait(0.05):
        names = [f"SKU-{rng.randint(1, skus):07d}"]
        try:
            wms.set_items([{"sku": n, "on_hand": rng.randint(50, 500)} for n in names])
        except RuntimeError:
            pass  # e.g. available would go negative; skip that one


def write(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"skus": args.skus, "clients": args.clients, "workers": args.workers, "pool_size": args.pool_size,
            "wms_budget_ms": args.wms_budget_ms, "cpus": os.cpu_count(), "overload_clients": args.overload_clients,
            "max_in_flight": args.max_in_flight or "shipped",
            "targets": {"shop": {"throughput_rps": 1000, "p99_ms": 50},
                        "live": {"p99_ms": args.wms_budget_ms + 20}}}
    path = args.out / "availability.json"
    path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\n{args.clients} clients, {args.workers} uvicorn workers, {args.skus} SKUs, {os.cpu_count()} CPUs, "
          f"WMS budget {args.wms_budget_ms} ms\n")
    print("| phase | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | shed | answered req/s, p50/p90/p99 ms "
          "| answers | live | load 1m | generator cores |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |")
    for r in results:
        answers = ", ".join(f"{k} {v}" for k, v in r["statuses"].items())
        live = ", ".join(f"{k} {v}" for k, v in r["live"].items()) or "-"
        answered = f"{r['answered_rps']}, {r['answered_p50_ms']}/{r['answered_p90_ms']}/{r['answered_p99_ms']}"
        print(f"| {r['phase']} | {r['requests']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p90_ms']} | "
              f"{r['p99_ms']} | {r['max_ms']} | {r['shed_rate']:.1%} | {answered} | {answers} | {live} | "
              f"{r['loadavg_1m']} | {r['generator_cores']} |")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    sys.exit(main())
