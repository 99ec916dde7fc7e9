"""Checkout gate benchmark: what stocksync's nginx checkout gate costs a request, and the database
reads it makes (docs/platforms-freeze.md).

    bash scripts/benchmark_checkout_gate.sh [--clients 8] [--requests 4000]

Not a test: it measures, it asserts nothing. In a database of its own on the checkout's
PostgreSQL cluster ($STOCKSYNC_PG_PORT, as the demo; dropped at the end), it starts the
availability service with its shipped settings (one worker, `FREEZE_CACHE_MS` 250), Debian's nginx
with the shipped snippet (Magento 2 URLs, fail mode open) in front of a stand-in storefront, and
sends `--requests` requests from `--clients` keep-alive connections (threads of this process: the
load generator shares the two cores with nginx, the service and PostgreSQL), for each of:

- browsing (`GET /women/tops.html`): not checkout, answered "go on" inside nginx;
- checkout open (`GET /checkout/`): nginx asks the service, which answers from its cache;
- checkout frozen: the same, refused with the shopper page.

Prints per case the throughput, median and p99 latency, and the service's database reads for the
gate (`stocksync_availability_checkout_gate_queries_total`) next to the requests that asked.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from devstack.availability_process import AvailabilityProcess, new_secret  # noqa: E402
from devstack.local_pg import scratch_database  # noqa: E402
from devstack.nginx_front import NginxFront, Storefront  # noqa: E402
from include.stocksync.shop import freeze  # noqa: E402
from include.stocksync.store.db import connect  # noqa: E402


def run_case(url: str, clients: int, total: int, expect: int | None) -> tuple[float, list[float]]:
    """`total` GETs of `url` from `clients` threads; (seconds, latencies in ms). Every answer must
    have status `expect` (None: any, for the warm-up, which also spans the cache's lag)."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def client() -> None:
        mine: list[float] = []
        with requests.Session() as session:
            for _ in range(per_client):
                started = time.perf_counter()
                response = session.get(url, timeout=10)
                mine.append((time.perf_counter() - started) * 1000)
                if expect is not None and response.status_code != expect:
                    raise RuntimeError(f"{url}: HTTP {response.status_code}, expected {expect}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def gate_queries(service: AvailabilityProcess) -> int:
    assert service.secret is not None
    text = requests.get(f"{service.url}/metrics", headers={"X-Inventory-Secret": service.secret}, timeout=10).text
    found = re.search(r"^stocksync_availability_checkout_gate_queries_total (\d+)$", text, re.M)
    return int(found.group(1)) if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    from include.stocksync.sync.pipeline import apply_schema

    root = Path(tempfile.mkdtemp(prefix="stocksync-gate-bench-"))
    with scratch_database("checkout_gate_bench") as pg:
        dsn = pg.dsn()
        apply_schema(dsn)
        storefront = Storefront(remember=False)
        service = AvailabilityProcess({"SHOP_DSN": dsn, "SECRET": new_secret()}, log_path=root / "service.log")
        try:
            service.start()
            assert service.secret is not None
            with NginxFront(root / "nginx", storefront_port=storefront.port, service_port=service.port,
                            secret=service.secret) as nginx:
                rows = []
                for name, path, expect, frozen in (("browsing", "/women/tops.html", 200, False),
                                                   ("checkout, open", "/checkout/", 200, False),
                                                   ("checkout, frozen", "/checkout/", 503, True)):
                    if frozen:
                        with connect(dsn) as conn:
                            freeze.set_freeze(conn, set_by="bench", reason="bench", message="Back soon",
                                              ttl_seconds=600)
                            conn.commit()
                    run_case(nginx.url + path, args.clients, args.clients * 20, None)  # warm-up
                    before = gate_queries(service)
                    seconds, latencies = run_case(nginx.url + path, args.clients, args.requests, expect)
                    latencies.sort()
                    rows.append((name, len(latencies) / seconds, statistics.median(latencies),
                                 latencies[int(len(latencies) * 0.99) - 1], gate_queries(service) - before,
                                 len(latencies), seconds))
        finally:
            service.stop()
            storefront.stop()
            shutil.rmtree(root, ignore_errors=True)
    print(f"\ncheckout gate, {args.clients} clients, shipped settings (FREEZE_CACHE_MS 250, 1 worker)\n")
    print("| case | req/s | median ms | p99 ms | gate database reads / requests (seconds) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, rate, median, p99, reads, count, seconds in rows:
        print(f"| {name} | {rate:,.0f} | {median:.2f} | {p99:.2f} | {reads} / {count} ({seconds:.1f} s) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
