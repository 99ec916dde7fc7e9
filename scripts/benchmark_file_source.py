"""File-drop source benchmark: extract of a 1M-row gzip stock file against the HTTP source.

    bash scripts/benchmark_file_source.sh [--sizes 100000,1000000] [--repeat 2] [--out artifacts/benchmark]

Not a test: it measures, it asserts nothing. It works in a database of its own on the checkout's
PostgreSQL cluster ($STOCKSYNC_PG_PORT, as the demo; dropped at the end, the cluster stopped unless
it was already running) and starts the WMS simulator, and for each size resets the simulator to that
many SKUs and exports one snapshot with `devstack/file_export.py`, as a gzip CSV and as gzip JSON
Lines (with manifests). Then, each in a fresh process (so the peak RSS is the extract's own), it
stages the same snapshot through `extract.extract_to_staging`, the path every source takes:

- `http`: the HTTP source (`WmsClient`, 10,000 items a page) from the simulator;
- `file csv.gz` and `file jsonl.gz`: the file source (`FileSource`, chunks of 50,000 rows) from
  the exported files: stream decompression, strict UTF-8, checksum and row count verified.

It reports SKUs/s, seconds, the peak RSS and its growth over the process's RSS before the walk
(the file source streams: the growth stays at about one chunk whatever the file's size), and the
1-minute load average (other work on the 2 shared cores skews the figures). The target: the file
source at least as fast as the HTTP source. Prints a markdown table and writes
`<out>/file_source.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

TOKEN = os.environ.setdefault("STOCKSYNC_BENCH_WMS_TOKEN", secrets.token_urlsafe(24))
KINDS = ("http", "csv.gz", "jsonl.gz")


def rss_mb(field: str = "VmRSS") -> float:
    """The current (`VmRSS`) or peak (`VmHWM`) resident set size of this process, in MB. Not
    `getrusage`: its maximum carries over from the parent process into a spawned child."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """In its own process: one extract of `args.kind`, timed, with its memory."""
    import requests

    import include.stocksync.airflow  # noqa: F401  (hands the drop folder's opener down: wiring.py)
    from include.stocksync.config.files import FileSourceSettings
    from include.stocksync.store.db import connect
    from include.stocksync.sync.extract import extract_to_staging
    from include.stocksync.sync.file_drop import drop_folder
    from include.stocksync.wms.sources.base import WalkBounds
    from include.stocksync.wms.sources.file import FileSource, read_manifest
    from include.stocksync.wms.sources.http import WmsClient

    dsn = os.environ["STOCKSYNC_BENCH_DSN"]
    run_id = f"bench-file-{args.kind}-{args.size}"
    if args.kind == "http":
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        source: Any = WmsClient(session, args.wms_url, page_size=10000, timeout=60)
    else:
        data = Path(args.file)
        fs = FileSourceSettings(location=data.parent.as_uri(), format="csv" if args.kind == "csv.gz" else "jsonl")
        folder = drop_folder(fs.location)
        source = FileSource(folder / data.name, read_manifest(folder / f"{data.name}{fs.manifest_suffix}",
                                                              data_file=data.name), fs)
    before = rss_mb()
    with connect(dsn) as conn:
        started = time.perf_counter()
        result = extract_to_staging(conn, source, run_id, bounds=WalkBounds(10_000, time.monotonic() + 3600))
        seconds = time.perf_counter() - started
        conn.rollback()  # staged rows are not kept
    peak = rss_mb("VmHWM")
    return {"kind": args.kind, "skus": args.size, "rows": result.rows, "batches": result.pages,
            "seconds": round(seconds, 3), "skus_per_second": round(result.rows / seconds),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "rss_growth_mb": round(peak - before, 1), "loadavg_1m": round(os.getloadavg()[0], 2),
            "file_bytes": Path(args.file).stat().st_size if args.file else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each kind per size (all reported)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "artifacts" / "benchmark")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--wms-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.worker).write_text(json.dumps(measure(args)))
        return 0

    from devstack.local_pg import scratch_database

    os.umask(0o077)
    args.out.mkdir(parents=True, exist_ok=True)
    with scratch_database("bench_file") as pg:  # the checkout's cluster, a database of its own
        return run(pg.dsn(), args)


def run(dsn: str, args: argparse.Namespace) -> int:
    from devstack.file_export import export_snapshot
    from devstack.local_stack import WmsProcess, free_port
    from include.stocksync.sync.pipeline import apply_schema

    apply_schema(dsn)
    wms = WmsProcess(free_port(), TOKEN, skus=10)
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="stocksync-file-bench-") as tmp:
            for size in (int(s) for s in args.sizes.split(",")):
                wms.admin.reset(size, size)
                folder = Path(tmp) / str(size)
                files = {}
                for kind, fmt in (("csv.gz", "csv"), ("jsonl.gz", "jsonl")):
                    started = time.perf_counter()
                    files[kind] = export_snapshot(wms.url, TOKEN, folder, fmt=fmt, name=f"stock.{kind}")
                    print(f"  exported {size:,} SKUs as {kind} ({files[kind].data.stat().st_size / 2**20:.1f} MB) "
                          f"in {time.perf_counter() - started:.1f}s", flush=True)
                for _ in range(args.repeat):
                    for kind in KINDS:
                        result_file = Path(tmp) / "result.json"
                        command = [sys.executable, __file__, "--worker", str(result_file), "--kind", kind,
                                   "--size", str(size), "--wms-url", wms.url]
                        if kind != "http":
                            command += ["--file", str(files[kind].data)]
                        # the DSN carries the password: environment, not command line
                        subprocess.run(command, check=True, env={**os.environ, "STOCKSYNC_BENCH_DSN": dsn,
                                                                 "PYTHONPATH": str(PROJECT_ROOT)})
                        result = json.loads(result_file.read_text())
                        results.append(result)
                        print(f"  {size:>9,} SKUs  {kind:<9} {result['seconds']:6.2f}s  "
                              f"{result['skus_per_second']:>9,} SKUs/s  peak RSS {result['peak_rss_mb']:.0f} MB "
                              f"(+{result['rss_growth_mb']:.0f} MB over the walk)  load {result['loadavg_1m']}",
                              flush=True)
    finally:
        wms.stop()

    best: dict[tuple[int, str], dict[str, Any]] = {}
    for r in results:
        key = (r["skus"], r["kind"])
        if key not in best or r["skus_per_second"] > best[key]["skus_per_second"]:
            best[key] = r
    lines = ["| SKUs | source | seconds | SKUs/s | vs HTTP | peak RSS | RSS growth | load 1m |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for (skus, kind), r in sorted(best.items()):
        http = best.get((skus, "http"))
        ratio = f"{r['skus_per_second'] / http['skus_per_second']:.2f}x" if http else ""
        name = "HTTP (pages of 10,000)" if kind == "http" else f"file {kind}"
        lines.append(f"| {skus:,} | {name} | {r['seconds']:.2f} | {r['skus_per_second']:,} | {ratio} | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['rss_growth_mb']:.0f} MB | {r['loadavg_1m']} |")
    table = "\n".join(lines)
    (args.out / "file_source.json").write_text(json.dumps(
        {"results": results, "best": [best[k] for k in sorted(best)], "machine": {"cores": os.cpu_count()}},
        indent=2))
    print("\nbest of each (SKUs/s):\n" + table + f"\n\nresults: {args.out / 'file_source.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
