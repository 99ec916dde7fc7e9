"""Checkout load: shoppers calling the shop's real `place_order()` in a loop.

Used by the concurrency tests and the benchmark to prove the sync is right while orders
keep coming. Each worker process writes one JSON line per attempt to its own file:
`{"order_id": id | null, "lines": [[sku, qty], ...], "refusal": message | null}`.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


def checkout_worker(dsn: str, skus: list[str], seed: int, out_path: str, stop: Any, max_attempts: int,
                    pause: float = 0.002, max_lines: int = 3) -> None:
    """Place orders of 1..`max_lines` distinct SKUs (1-3 units each) until `stop` is set."""
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn, open(out_path, "w") as out:
        for _ in range(max_attempts):
            if stop.is_set():
                break
            picked = rng.sample(skus, k=min(len(skus), rng.randint(1, max_lines)))
            lines = [[sku, rng.randint(1, 3)] for sku in picked]
            try:
                row = conn.execute("SELECT shop.place_order(%s, %s, %s)",
                                   ([s for s, _ in lines], [q for _, q in lines], f"load-{seed}")).fetchone()
                result = {"order_id": int(row[0]) if row else None, "lines": lines, "refusal": None}
            except psycopg.Error as exc:
                result = {"order_id": None, "lines": lines, "refusal": exc.diag.message_primary or str(exc)}
            out.write(json.dumps(result) + "\n")
            time.sleep(pause)


@dataclass
class CheckoutLoad:
    """Start `workers` checkout processes; `stop()` ends them and returns every attempt."""

    dsn: str
    skus: list[str]
    workers: int = 4
    max_attempts: int = 400
    pause: float = 0.002
    seed: int = 0
    out_dir: Path = Path("/tmp")

    def start(self) -> CheckoutLoad:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._paths = [self.out_dir / f"checkout-{self.seed}-{n}.jsonl" for n in range(self.workers)]
        self._processes = [
            context.Process(target=checkout_worker,
                            args=(self.dsn, self.skus, self.seed * 100 + n, str(path), self._stop, self.max_attempts,
                                  self.pause))
            for n, path in enumerate(self._paths)
        ]
        for process in self._processes:
            process.start()
        return self

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        for process in self._processes:
            process.join(60)
            if process.exitcode != 0:
                raise RuntimeError(f"checkout worker exited with {process.exitcode}")
        attempts = []
        for path in self._paths:
            attempts += [json.loads(line) for line in path.read_text().splitlines()]
        return attempts
