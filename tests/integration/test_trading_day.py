"""A simulated trading day on the real shop DB and WMS service, through the real DAGs (`dag.test()`):
checkout workers place orders concurrently all day; `orders_to_wms` sends them; the WMS counts them,
ships some, and records its own receipts and damages, which show in its change feed; shoppers cancel
a few sent orders; several `inventory_intraday_sync` runs keep the shop in line; then the nightly.

Afterwards every SKU is `max(0, WMS available - units of accepted orders the WMS had not counted)`,
every order the WMS acknowledged is allocated exactly once (less what shipped or was cancelled), and
the drift the nightly records is exactly what was injected into the WMS after the last intraday run.
The figures are printed (run with -s) and written to artifacts/trading_day.json."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from include.stocksync.config.settings import PROJECT_ROOT
from include.stocksync.store.db import connect
from include.stocksync.sync import drift
from tests.conftest import fresh_dag, shop_in_line_with_wms
from tests.integration.loop_helpers import order_lines, shop_stock, truth, wms_post

pytestmark = pytest.mark.slow

# The catalog's size sets the day's length: the shoppers place orders faster than one push sends
# them, so the first `orders_to_wms` run goes on until checkout runs out of stock (refusals) and the
# push catches up; 50 SKUs (their WMS stock, about 12,000 units) run out after some 3,000 orders.
SKUS = 50
WORKERS = 4
ROUNDS = 3


class Checkout:
    """Shoppers: `WORKERS` threads placing random orders through `shop.place_order()` until stopped."""

    def __init__(self, dsn: str, skus: list[str], seed: int) -> None:
        self.dsn, self.skus, self.seed = dsn, skus, seed
        self.stop = threading.Event()
        self.placed = 0
        self.refused: Counter[str] = Counter()
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.shop, args=(n,), daemon=True) for n in range(WORKERS)]

    def shop(self, n: int) -> None:
        rng = random.Random(self.seed * 100 + n)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                picked = rng.sample(self.skus, k=rng.randint(1, 3))
                lines = [(sku, rng.randint(1, 3)) for sku in picked]
                try:
                    conn.execute("SELECT shop.place_order(%s, %s, %s)",
                                 ([s for s, _ in lines], [q for _, q in lines], f"shopper-{n}"))
                    with self.lock:
                        self.placed += 1
                except psycopg.Error as exc:
                    with self.lock:
                        if exc.sqlstate and exc.sqlstate.startswith("SF"):
                            self.refused[exc.sqlstate] += 1
                        else:
                            self.errors.append(str(exc))
                time.sleep(rng.uniform(0.005, 0.03))

    def __enter__(self) -> Checkout:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def run_dag(dagbag: Any, dag_id: str) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = fresh_dag(dagbag, dag_id).test()
    assert dag_run.state == DagRunState.SUCCESS, (dag_id, dag_run.run_id)
    return dag_run


def scalar(dsn: str, sql: str, params: Any = None) -> Any:
    with connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def test_a_trading_day(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any, webhook: Any) -> None:
    rng = random.Random(13)
    dsn = shop_in_line_with_wms(clean_shop, wms, SKUS, seed=13, drift_share=0.1)
    skus = [item["sku"] for item in wms.admin.items()]
    initial_allocated = {item["sku"]: item["allocated"] for item in wms.admin.items()}
    figures: dict[str, Any] = {"skus": SKUS, "workers": WORKERS}

    first_night = run_dag(dagbag, "inventory_nightly_sync")
    assert shop_stock(dsn) == truth(dsn, wms)
    figures["first_nightly_drift_skus_off"] = drift.recorded(stocksync_dsn, first_night.run_id)["skus_off"]

    shipped: set[str] = set()
    adjusted: Counter[str] = Counter()
    intraday_runs: list[str] = []
    with Checkout(dsn, skus, seed=13) as shoppers:
        for _ in range(ROUNDS):
            time.sleep(1.5)
            # a few shoppers cancel orders the WMS already has (the WMS releases them, the intraday raises stock)
            with connect(dsn) as conn:
                sent = [r[0] for r in conn.execute(
                    "SELECT order_id FROM shop.orders WHERE wms_acknowledged_at IS NOT NULL AND status = 'placed' "
                    "ORDER BY random() LIMIT 3")]
                conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = ANY (%s)", (sent,))
                conn.commit()
            run_dag(dagbag, "orders_to_wms")
            # the warehouse ships some orders it has, receives goods and finds damage
            with connect(dsn) as conn:
                ship = [f"shop-order-{r[0]}" for r in conn.execute(
                    "SELECT order_id FROM shop.orders WHERE wms_acknowledged_at IS NOT NULL AND status = 'placed' "
                    "ORDER BY random() LIMIT 10")]
            shipped.update(wms_post(wms, "/_admin/ship", {"keys": ship})["shipped"])
            items = {i["sku"]: i for i in wms.admin.items()}
            changes = []
            for sku in rng.sample(skus, 8):
                if rng.random() < 0.5:
                    changes.append({"sku": sku, "on_hand": rng.randint(5, 40)})
                elif items[sku]["available"] >= 2:
                    changes.append({"sku": sku, "non_usable": rng.randint(1, min(5, items[sku]["available"]))})
            wms_post(wms, "/_admin/adjust", {"items": changes})
            adjusted.update(c["sku"] for c in changes)
            intraday_runs.append(run_dag(dagbag, "inventory_intraday_sync").run_id)
    assert shoppers.errors == []
    # the day's last orders reach the WMS and the last intraday run applies the rest of the feed
    run_dag(dagbag, "orders_to_wms")
    intraday_runs.append(run_dag(dagbag, "inventory_intraday_sync").run_id)
    assert shop_stock(dsn) == truth(dsn, wms), "the intraday runs kept the shop in line"

    # after the last intraday run, the warehouse changes stock the shop will only learn at night
    settled = truth(dsn, wms)
    # damage where the most stock is left (a damage takes up to 5 available units), goods received
    # on the next five (a receipt needs no stock: a sold-out SKU comes back)
    by_stock = sorted(skus, key=lambda sku: (-settled[sku], sku))
    assert settled[by_stock[4]] >= 5, f"five SKUs with 5 units left for the night's damages: {settled}"
    receipts = {s: rng.randint(1, 9) for s in by_stock[5:10]}
    damages = {s: rng.randint(1, 5) for s in by_stock[:5]}
    wms_post(wms, "/_admin/adjust", {"items": [{"sku": s, "on_hand": q} for s, q in receipts.items()]
                                     + [{"sku": s, "non_usable": q} for s, q in damages.items()]})
    night = run_dag(dagbag, "inventory_nightly_sync")

    # every SKU is the truth
    assert shop_stock(dsn) == truth(dsn, wms)
    # no order lost or counted twice in the WMS: allocation = acknowledged - shipped - cancelled there
    lines = order_lines(dsn)
    with connect(dsn) as conn:
        acked = [r[0] for r in conn.execute("SELECT order_id FROM shop.orders WHERE wms_acknowledged_at IS NOT NULL")]
    with connect(stocksync_dsn) as conn:
        cancelled = [r[0] for r in conn.execute("SELECT order_id FROM stocksync.order_pushes WHERE cancelled_at "
                                                "IS NOT NULL")]
    released = set(cancelled) | {int(k.removeprefix("shop-order-")) for k in shipped}
    expected = dict(initial_allocated)
    for order_id in acked:
        if order_id not in released:
            for sku, qty in lines[order_id]:
                expected[sku] += qty
    assert {i["sku"]: i["allocated"] for i in wms.admin.items()} == expected
    # the nightly's drift is exactly what was injected after the last intraday run
    recorded = drift.recorded(stocksync_dsn, night.run_id)
    assert recorded is not None
    assert (recorded["skus_off"], recorded["units_under"], recorded["units_over"]) == (
        len(receipts) + len(damages), sum(receipts.values()), sum(damages.values()))
    with connect(stocksync_dsn) as conn:
        per_sku = {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT sku, units_over, units_under FROM stocksync.sku_drift WHERE run_id = %s", (night.run_id,))}
    assert per_sku == {**{s: (0, q) for s, q in receipts.items()}, **{s: (q, 0) for s, q in damages.items()}}

    with connect(stocksync_dsn) as conn:
        pushes = conn.execute("SELECT sum(sent), sum(repeated), sum(acknowledged), sum(dead_lettered), "
                              "sum(cancels_sent), sum(cancels_refused), count(*) FROM stocksync.order_push_runs"
                              ).fetchone()
        feed = conn.execute("SELECT count(*), sum(events), sum(skus) FROM stocksync.feed_runs f "
                            "JOIN stocksync.sync_runs r USING (run_id) WHERE r.status = 'applied'").fetchone()
        statuses = dict(conn.execute("SELECT status, count(*) FROM stocksync.sync_runs "
                                     "WHERE dag_id = 'inventory_intraday_sync' GROUP BY status").fetchall())
        changed = scalar(stocksync_dsn, "SELECT coalesce(sum(changed + clamped), 0) FROM stocksync.sync_runs "
                              "WHERE dag_id = 'inventory_intraday_sync'")
    figures.update({
        "orders_placed": shoppers.placed, "checkout_refusals": dict(shoppers.refused),
        "orders_pushed_new": int(pushes[0]), "orders_pushed_repeat": int(pushes[1]),
        "orders_acknowledged": int(pushes[2]), "orders_dead_lettered": int(pushes[3]),
        "cancels_sent": int(pushes[4]), "cancels_refused": int(pushes[5]), "order_push_runs": int(pushes[6]),
        "orders_shipped": len(shipped), "wms_adjustments": sum(adjusted.values()),
        "intraday_runs": len(intraday_runs), "intraday_statuses": statuses,
        "intraday_events_read": int(feed[1] or 0), "intraday_skus_in_deltas": int(feed[2] or 0),
        "intraday_skus_changed": int(changed),
        "nightly_drift": {k: recorded[k] for k in ("skus_checked", "skus_off", "units_over", "units_under")},
        "injected_after_last_intraday": {"receipts": sum(receipts.values()), "damages": sum(damages.values()),
                                         "skus": len(receipts) + len(damages)},
    })
    assert figures["orders_acknowledged"] == len(acked) and figures["orders_placed"] > 50
    assert statuses == {"applied": len(intraday_runs)}
    out = Path(PROJECT_ROOT / "artifacts" / "trading_day.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print("trading day:", json.dumps(figures, default=str))
    assert not [a for a in webhook.received() if a["body"].get("run_id") == night.run_id]
