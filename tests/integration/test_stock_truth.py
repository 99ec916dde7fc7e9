"""Stock truth (docs/architecture.md): right numbers while orders keep coming, in every
freeze mode; stale, duplicate and re-run protection; manual and expired freezes."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.checkout_load import CheckoutLoad
from devstack.demo_seed import load_catalog, reset_shop
from include.stocksync.config.settings import PROJECT_ROOT, load_settings
from include.stocksync.shop import freeze
from include.stocksync.store.db import connect
from include.stocksync.sync import pipeline
from include.stocksync.sync.apply import apply_plan
from include.stocksync.sync.merge import plan_table
from tests.conftest import (
    TEST_TOKEN,
    SplitDatabases,
    active_freezes,
    fresh_dag,
    shop_in_line_with_wms,
    stock_fingerprint,
    try_place_order,
)
from tests.integration.test_nightly_sync import run_nightly

pytestmark = pytest.mark.slow

ARTIFACTS = PROJECT_ROOT / "artifacts"
HOT = 60          # SKUs the shoppers buy
SCARCE = 6        # of which these have little stock


def build_shop(dsn: str, wms: Any, skus: int, seed: int) -> dict[str, Any]:
    """A shop in line with an earlier WMS state; then the WMS moved (stock arrived) for the hot SKUs."""
    wms.admin.reset(skus, seed)
    items = wms.admin.items()

    with connect(dsn) as conn:
        reset_shop(conn)
        load_catalog(conn, items, random.Random(seed), drift_share=0.0)
        conn.commit()
    hot = [item["sku"] for item in items[:HOT]]
    scarce = hot[:SCARCE]
    # the shop knew 250 (6 for scarce SKUs); the WMS now has 300 (still 6) available
    wms.admin.set_items([{"sku": s, "on_hand": 6 if s in scarce else 300, "non_usable": 0, "allocated": 0}
                         for s in hot])
    with connect(dsn) as conn:
        conn.execute("UPDATE shop.stock SET qty = CASE WHEN sku = ANY(%(scarce)s) THEN 6 ELSE 250 END "
                     "WHERE sku = ANY(%(hot)s)", {"hot": hot, "scarce": scarce})
        conn.commit()
    return {"hot": hot, "scarce": scarce}


def order_units(dsn: str) -> tuple[dict[str, int], dict[int, set[tuple[str, int]]]]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT order_id, sku, qty FROM shop.order_lines").fetchall()
    units: dict[str, int] = defaultdict(int)
    orders: dict[int, set[tuple[str, int]]] = defaultdict(set)
    for order_id, sku, qty in rows:
        units[sku] += qty
        orders[order_id].add((sku, qty))
    return units, orders


@pytest.mark.parametrize("freeze_mode", ["full", "apply", "none"])
def test_concurrent_checkouts_keep_stock_true(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any,
                                              freeze_mode: str, tmp_path: Path) -> None:
    from airflow.utils.state import DagRunState

    dsn = clean_shop
    shop = build_shop(dsn, wms, skus=3000, seed=11)
    # 4 shoppers, ~40 attempts/s each, for as long as the run takes (bounded at 2,000 attempts each)
    load = CheckoutLoad(dsn, shop["hot"], workers=4, max_attempts=2000, pause=0.025, seed=7,
                        out_dir=tmp_path).start()
    wms_before = wms.admin.items()
    try:
        time.sleep(0.5)  # shoppers buy against the old numbers first
        dag_run = run_nightly(dagbag, {"freeze_mode": freeze_mode, "page_size": 1000})
        time.sleep(0.5)  # and against the new ones afterwards
    finally:
        attempts = load.stop()

    assert dag_run.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, dag_run.run_id)
    # A from the WMS itself (its admin API), not from what stocksync recorded: shop orders never
    # reach the WMS in this test, so the WMS held these figures from before the run to after it
    assert wms.admin.items() == wms_before
    available = {item["sku"]: item["on_hand"] - item["non_usable"] - item["allocated"] for item in wms_before}
    with connect(dsn) as conn:
        order_times = conn.execute("SELECT created_at FROM shop.orders").fetchall()
        freezes = conn.execute("SELECT set_at, released_at FROM shop.checkout_freezes WHERE set_by = %s",
                               (dag_run.run_id,)).fetchall()
    with connect(stocksync_dsn) as conn:
        applied_at = conn.execute("SELECT applied_at FROM stocksync.applied_snapshots WHERE run_id = %s",
                                  (dag_run.run_id,)).fetchone()
    final = {sku: qty for sku, qty, _, _ in stock_fingerprint(dsn)}
    units, stored_orders = order_units(dsn)

    # §3.6: shop stock == max(0, A - U) for every SKU, never negative
    wrong = {sku: (final[sku], available[sku], units[sku]) for sku in final
             if final[sku] != max(0, available[sku] - units[sku])}
    assert not wrong, f"{len(wrong)} SKUs differ from max(0, A - U): {dict(list(wrong.items())[:5])}"
    assert min(final.values()) >= 0
    # the shop started at or below the WMS figure, so units sold never exceed what the WMS had
    assert all(units[sku] <= available[sku] for sku in shop["hot"])
    # the test proves something only if most hot SKUs kept stock above zero
    assert sum(1 for sku in shop["hot"] if final[sku] > 0) >= 0.7 * len(shop["hot"])

    accepted = [a for a in attempts if a["order_id"] is not None]
    refused = [a for a in attempts if a["order_id"] is None]
    assert len(attempts) >= 200
    assert {a["order_id"]: {(s, q) for s, q in a["lines"]} for a in accepted} == dict(stored_orders)
    reasons = Counter("frozen" if a["refusal"].startswith("checkout is frozen")
                      else "insufficient" if a["refusal"].startswith("insufficient stock") else a["refusal"]
                      for a in refused)
    assert set(reasons) <= {"frozen", "insufficient"}, reasons
    assert reasons["insufficient"] > 0  # scarce SKUs ran out

    # the freeze window by what it covers, from the shop's own freeze row (how short the apply-mode
    # window is belongs to scripts/benchmark.py: "freeze window, apply mode")
    during_run = [t for (t,) in order_times if run["started_at"] <= t <= run["finished_at"]]
    assert applied_at is not None
    assert len(freezes) == (0 if freeze_mode == "none" else 1), freezes
    if freeze_mode == "full":  # closed from before the WMS was asked to after the apply
        assert reasons["frozen"] > 0 and run["freeze_seconds"] > 0
        [(set_at, released_at)] = freezes
        assert set_at <= run["request_started_at"] and applied_at[0] <= released_at
    elif freeze_mode == "apply":  # closed only after the snapshot was read, around the apply
        assert during_run, "no checkout succeeded while the run was going on"
        assert run["freeze_seconds"] > 0
        [(set_at, released_at)] = freezes
        assert run["request_started_at"] < set_at <= applied_at[0] <= released_at
        assert [t for t in during_run if t < set_at], "no checkout succeeded before the apply-mode freeze"
    else:
        assert reasons["frozen"] == 0 and run["freeze_seconds"] == 0
        assert during_run, "no checkout succeeded while the run was going on"
    assert active_freezes(dsn) == []

    stats = {"freeze_mode": freeze_mode, "attempts": len(attempts), "accepted": len(accepted),
             "refused": len(refused), "refused_by_reason": dict(reasons), "accepted_during_run": len(during_run),
             "freeze_seconds": round(run["freeze_seconds"], 3),
             "moved_skus_recomputed_under_lock": (run["apply_details"] or {}).get("moved_skus"),
             "skus_checked": len(final), "hot_skus_above_zero": sum(1 for s in shop["hot"] if final[s] > 0)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"concurrency_{freeze_mode}.json").write_text(json.dumps(stats, indent=2))
    print(json.dumps(stats))


def _prepare(db: SplitDatabases, run_id: str, settings: Any, session: Any, url: str) -> str:
    pipeline.open_run(db.stocksync, run_id=run_id, dag_id="test", settings=settings)
    pipeline.extract(db.stocksync, run_id=run_id, session=session, base_url=url, shop=db.shop_port())
    pipeline.validate(db.stocksync, run_id=run_id, shop=db.shop_port())
    return pipeline.merge(db.stocksync, run_id=run_id, shop=db.shop_port()).plan_table


def test_older_snapshot_is_stale_same_snapshot_is_duplicate_rerun_changes_nothing(clean_split: SplitDatabases,
                                                                                  wms: Any) -> None:

    db = clean_split
    dsn, store = db.shop, db.stocksync
    shop_in_line_with_wms(dsn, wms, 30, 5, drift_share=0.3)
    settings = load_settings().for_run({"page_size": 10})
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TEST_TOKEN}"

    _prepare(db, "old", settings, session, wms.url)             # snapshot S1, not applied yet
    moved = [f"SKU-{n:07d}" for n in (2, 4, 6, 8, 10)]
    wms.admin.set_items([{"sku": s, "on_hand": 77, "non_usable": 0, "allocated": 0} for s in moved])
    new_plan = _prepare(db, "new", settings, session, wms.url)  # snapshot S2 (newer seq for 5 SKUs)
    applied = pipeline.load(store, run_id="new", plan_table=new_plan, shop=db.shop_port())
    assert applied.status == "applied"
    after_new = stock_fingerprint(dsn)
    assert {sku: qty for sku, qty, _, _ in after_new if sku in moved} == dict.fromkeys(moved, 77)

    # the older snapshot arrives late: the 5 SKUs it has older data for are stale, nothing changes
    late = pipeline.load(store, run_id="old", plan_table=plan_table("old"), shop=db.shop_port())
    assert late.status == "applied"
    assert late.counts.get("stale") == 5 and late.counts.get("unchanged") == 25 and "changed" not in late.counts
    assert stock_fingerprint(dsn) == after_new
    with connect(store) as conn:
        stale = {r[0] for r in conn.execute("SELECT sku FROM stocksync.sku_audit WHERE run_id = 'old' "
                                            "AND outcome = 'stale'")}
    assert stale == set(moved)
    assert pipeline.get_run(store, "old")["stale"] == 5

    # the same snapshot under another run: duplicate, nothing changes
    snapshot = pipeline.get_run(store, "new")["snapshot_id"]
    pipeline.open_run(store, run_id="again", dag_id="test", settings=settings)
    with connect(store) as conn:
        duplicate = apply_plan(conn, run_id="again", snapshot_id=snapshot, plan_table=new_plan, settings=settings,
                               watermark=pipeline.run_watermark(pipeline.get_run(store, "new"), settings),
                               shop=db.shop_port())
    assert duplicate.status == "duplicate" and duplicate.counts == {"duplicate": 30}
    assert pipeline.get_run(store, "again")["duplicate"] == 30
    assert stock_fingerprint(dsn) == after_new

    # re-running the load of a finished run: nothing changes, audit counts stay
    with connect(store) as conn:
        audit_before = conn.execute("SELECT count(*) FROM stocksync.sku_audit").fetchone()
    rerun = pipeline.load(store, run_id="new", plan_table=new_plan, shop=db.shop_port())
    assert rerun.status == "already_applied"
    assert stock_fingerprint(dsn) == after_new
    with connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.sku_audit").fetchone() == audit_before


def test_a_run_id_of_another_dag_neither_opens_nor_releases_its_run(clean_split: SplitDatabases, wms: Any) -> None:
    """Run ids are unique per DAG only: the second DAG's run with the same id is refused, and its
    teardown leaves the first run's freeze and record alone."""
    dsn, store, shop = clean_split.shop, clean_split.stocksync, clean_split.shop_port()
    shop_in_line_with_wms(dsn, wms, 10, 6, drift_share=0.0)
    settings = load_settings().for_run({"freeze_mode": "full"})
    held = pipeline.freeze_checkout(store, run_id="same-id", dag_id="inventory_nightly_sync", settings=settings,
                                    shop=shop)
    assert held["frozen"] is True
    record = pipeline.get_run(store, "same-id")

    with pytest.raises(pipeline.RunIdTaken, match="already used by a stock sync run of DAG 'inventory_nightly_sync'"):
        pipeline.freeze_checkout(store, run_id="same-id", dag_id="inventory_full_push", settings=settings, shop=shop)
    skipped = pipeline.release_freeze(store, run_id="same-id", dag_id="inventory_full_push", shop=shop)

    assert skipped["released"] == 0 and skipped["skipped"] == "run id belongs to DAG inventory_nightly_sync"
    assert active_freezes(dsn) == [(held["freeze_id"], "same-id")]
    assert pipeline.get_run(store, "same-id") == record
    released = pipeline.release_freeze(store, run_id="same-id", dag_id="inventory_nightly_sync", shop=shop)
    assert released["released"] == 1 and active_freezes(dsn) == []


def test_rerun_of_a_finished_dag_run_changes_nothing(dagbag: Any, clean_shop: str, stocksync_dsn: str,
                                                    wms: Any) -> None:
    from airflow.utils.state import DagRunState

    dsn = clean_shop
    shop_in_line_with_wms(dsn, wms, 30, 9, drift_share=0.5)
    dag = fresh_dag(dagbag, "inventory_nightly_sync")
    logical_date = datetime.now(timezone.utc).replace(microsecond=0)
    first = dag.test(logical_date=logical_date, run_after=logical_date)
    assert first.state == DagRunState.SUCCESS
    run = pipeline.get_run(stocksync_dsn, first.run_id)
    assert run["changed"] > 0
    stock = stock_fingerprint(dsn)
    with connect(stocksync_dsn) as conn:
        audit = conn.execute("SELECT outcome, count(*) FROM stocksync.sku_audit GROUP BY outcome ORDER BY 1").fetchall()

    second = dag.test(logical_date=logical_date, run_after=logical_date)  # clears and re-runs the same run

    assert second.run_id == first.run_id and second.state == DagRunState.SUCCESS
    assert stock_fingerprint(dsn) == stock
    with connect(stocksync_dsn) as conn:
        assert conn.execute("SELECT outcome, count(*) FROM stocksync.sku_audit GROUP BY outcome "
                            "ORDER BY 1").fetchall() == audit
    again = pipeline.get_run(stocksync_dsn, first.run_id)
    assert (again["status"], again["changed"], again["unchanged"]) == ("applied", run["changed"], run["unchanged"])
    assert (again["snapshot_id"], again["extracted"], again["stage_seconds"]) == (
        run["snapshot_id"], run["extracted"], run["stage_seconds"])  # no task redid its work


@pytest.mark.parametrize("freeze_mode", ["full", "apply", "none"])
def test_manual_freeze_survives_a_sync(dagbag: Any, clean_shop: str, stocksync_dsn: str, wms: Any,
                                      freeze_mode: str) -> None:
    from airflow.utils.state import DagRunState

    dsn = clean_shop
    shop_in_line_with_wms(dsn, wms, 20, 4, drift_share=0.5)
    with connect(dsn) as conn:
        manual = freeze.set_freeze(conn, set_by="ops:maintenance", reason="payment provider maintenance",
                                   message="Checkout is closed for maintenance until 06:00 UTC.", ttl_seconds=3600)

    dag_run = run_nightly(dagbag, {"freeze_mode": freeze_mode})

    assert dag_run.state == DagRunState.SUCCESS
    assert pipeline.get_run(stocksync_dsn, dag_run.run_id)["changed"] > 0
    assert active_freezes(dsn) == [(manual.freeze_id, "ops:maintenance")]
    sku = max(stock_fingerprint(dsn), key=lambda row: row[1])[0]
    _, refusal = try_place_order(dsn, [(sku, 1)])
    assert refusal == "checkout is frozen: Checkout is closed for maintenance until 06:00 UTC."
    with connect(dsn) as conn:
        freeze.release_freezes(conn, set_by="ops:maintenance")
    order_id, refusal = try_place_order(dsn, [(sku, 1)])
    assert refusal is None and order_id


def test_expired_freeze_does_not_block_checkout_or_the_sync(dagbag: Any, clean_shop: str, wms: Any) -> None:
    from airflow.utils.state import DagRunState

    dsn = clean_shop
    wms.admin.reset(20, 4)
    with connect(dsn) as conn:
        load_catalog(conn, wms.admin.items(), random.Random(3), drift_share=0.0)
        conn.execute("INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, set_at, expires_at) "
                     "VALUES ('crashed run', 'back soon', 'scheduled__dead', now() - interval '2 hours', "
                     "now() - interval '1 hour')")
        conn.commit()
    sku = max(stock_fingerprint(dsn), key=lambda row: row[1])[0]
    order_id, refusal = try_place_order(dsn, [(sku, 1)])
    assert refusal is None and order_id
    dag_run = run_nightly(dagbag, {"freeze_mode": "full"})
    assert dag_run.state == DagRunState.SUCCESS
    assert active_freezes(dsn) == []
    with connect(dsn) as conn:  # the dead run's row is not ours to release; it just stays expired
        assert conn.execute("SELECT released_at FROM shop.checkout_freezes WHERE set_by = 'scheduled__dead'"
                            ).fetchone() == (None,)
