"""Apply the plan to the shop in one transaction (docs/architecture.md).

Inside one transaction:

1. refuse a second apply for the same run (idempotent re-run) and recognise a snapshot
   that another run already applied (`duplicate`: audit rows, no stock change);
2. copy the shop's current stock and in-window demand into stocksync's database through the
   shop port (include/stocksync/shop/port.py), compute every SKU's outcome and write
   the audit rows (no lock yet: checkouts go on). The audit holds the SKUs the
   apply writes or cannot apply as computed and those held below the WMS's figure by
   in-window demand; a SKU left unchanged with no demand is counted on the run record and
   its row is its snapshot's figure (`stocksync.sku_outcomes(run_id)`, migration 0007);
3. `before_lock()` (the `apply` freeze mode closes checkout here, committed on its own
   so shoppers see it), then open the shop's apply session: its own transaction, the stock
   locked against checkout;
4. re-read the in-window demand under the lock; SKUs whose demand moved meanwhile
   (orders committed while we waited) get their outcomes, audit rows and writes recomputed
   from their stock read under the lock, so the numbers written count every order;
5. one set-based write by the port of the rows whose value or WMS sequence moves, guarded by `seq`;
6. record the applied snapshot and the run's counts; the shop commits, then stocksync.

Checkouts that waited on the lock then decrement the new values.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from include.stocksync.config.settings import Settings
from include.stocksync.runs import record as runs
from include.stocksync.shop.port import ApplySession, InPlaceApply, InPlaceShop, ShopPort, StockWrite
from include.stocksync.shop.registry import shop_in_same_database
from include.stocksync.store.db import query
from include.stocksync.sync.merge import (
    Watermark,
    copy_demand,
    create_demand,
    demand_params,
    demand_query,
    outcomes_query,
)
from include.stocksync.sync.shop_mirror import mirror_stock, replace_stock_rows

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    status: str  # applied | duplicate | already_applied
    counts: dict[str, int]
    rows_written: int = 0
    moved_skus: int = 0
    locked_seconds: float = 0.0  # the shop's apply transaction, from its start to its commit
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    # of that transaction, the time stock rows were locked (ApplySession.rows_locked_at to the
    # commit): what checkout or a shipment could wait on
    rows_locked_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "counts": self.counts, "rows_written": self.rows_written,
                "moved_skus": self.moved_skus, "locked_seconds": round(self.locked_seconds, 4),
                "rows_locked_seconds": round(self.rows_locked_seconds, 4),
                "seconds": round(self.seconds, 3), "timings": {k: round(v, 4) for k, v in self.timings.items()}}


def _counts(conn: psycopg.Connection, run_id: str) -> Counter[str]:
    """A finished run's outcome counts, from its run record (the audit leaves unchanged SKUs out)."""
    run = runs.read_run(conn, run_id)
    return Counter({outcome: int(run[outcome]) for outcome in runs.OUTCOMES if run.get(outcome)})


def _outcome_counts(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None,
                    **identifiers: Any) -> Counter[str]:
    return Counter({outcome: int(n) for outcome, n in conn.execute(query(name, **identifiers), params).fetchall()})


# the writes reach the shop's COPY in blocks of this many rows read from a server-side cursor (a
# row per round trip, `cursor.stream`, took 0.26 s for 30k writes; memory stays at one block)
WRITES_BLOCK_ROWS = 10_000


def _writes(conn: psycopg.Connection, writes: sql.Identifier) -> Iterator[StockWrite]:
    with conn.cursor(name="stock_writes") as cur:
        cur.itersize = WRITES_BLOCK_ROWS
        cur.execute(query("stocksync/select_writes", writes=writes))
        for sku, new_qty, wms_seq in cur:
            yield StockWrite(sku, int(new_qty), int(wms_seq))


def _locked_demand(conn: psycopg.Connection, locked: ApplySession, question: Any) -> sql.Identifier:
    """The in-window demand under the lock, in the transaction-local table `demand_after_lock`."""
    if isinstance(locked, InPlaceApply):
        table = create_demand(conn, "demand_after_lock")
        locked.demand_into(table, question)
        return table
    return copy_demand(conn, "demand_after_lock", lambda sink: locked.stream_demand(question, sink))


def apply_plan(conn: psycopg.Connection, *, run_id: str, snapshot_id: str, plan_table: str,
               settings: Settings, watermark: Watermark,
               before_lock: Callable[[], None] | None = None,
               after_lock: Callable[[], None] | None = None,
               before_write: Callable[[psycopg.Connection, Counter[str]], None] | None = None,
               shop: ShopPort | None = None) -> ApplyResult:
    """Apply `plan_table` to the shop for `run_id`. See the module docstring. `before_write(conn,
    counts)` runs in the transaction once the audit rows and the outcome counts are final, before
    the stock write (a full sync records the drift it corrects there: include/stocksync/sync/drift.py).
    `shop`: the shop port (the shop in `conn`'s database when none is given)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    port = shop or shop_in_same_database(conn)

    def mark(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = now - since
        return now

    with conn.transaction():
        status_row = runs.applied_status(conn, run_id)
        if status_row is None:
            raise RuntimeError(f"no run record for {run_id}: the freeze_checkout setup task opens it")
        if status_row[0] in ("applied", "duplicate"):
            log.info("run %s already applied snapshot %s; nothing to do", run_id, status_row[1])
            return ApplyResult("already_applied", dict(_counts(conn, run_id)),
                               seconds=time.perf_counter() - started)

        previous = conn.execute(query("stocksync/select_applied_snapshot"),
                                {"snapshot_id": snapshot_id}).fetchone()
        t = time.perf_counter()
        mirror = mirror_stock(conn, port, run_id)  # the shop's stock as it is now, in stocksync's database
        t = mark("copy_stock", t)
        if previous is not None:
            duplicates = conn.execute(query("stocksync/insert_duplicate_audit", plan=plan_table,
                                            current_stock=mirror.current_stock()),
                                      {"run_id": run_id, "snapshot_id": snapshot_id}).rowcount
            counts = Counter({"duplicate": duplicates} if duplicates else {})
            runs.record_applied(conn, run_id, "duplicate", counts, sum(counts.values()), watermark)
            log.warning("snapshot %s was already applied by run %s at %s: recorded as duplicate, nothing changed",
                        snapshot_id, previous[0], previous[1])
            return ApplyResult("duplicate", dict(counts), seconds=time.perf_counter() - started)

        question = demand_query(demand_params(settings, watermark))
        plan = sql.Identifier("stocksync", plan_table)
        before = copy_demand(conn, "demand_before_lock", lambda sink: port.stream_demand(question, sink))
        outcomes = sql.Identifier("sku_outcomes")
        # plan, catalog and stock all have their SKU index: merging them in SKU order beats
        # building two catalog-sized hash tables (1M SKUs: ~1.5 s against ~2.7 s)
        conn.execute("SET LOCAL enable_hashjoin = off")
        conn.execute(query("stocksync/create_outcomes", outcomes_table=outcomes, audited=query(
            "stocksync/select_audited_outcomes", outcomes=outcomes_query(plan, before, mirror))))
        conn.execute("SET LOCAL enable_hashjoin = on")
        audited = conn.execute(query("stocksync/insert_sku_audit", outcomes_table=outcomes),
                               {"run_id": run_id, "snapshot_id": snapshot_id}).rowcount
        writes = sql.Identifier("stock_writes")
        conn.execute(query("stocksync/create_writes", writes=writes))
        conn.execute(query("stocksync/insert_writes", writes=writes, outcomes_table=outcomes))
        planned = conn.execute(query("stocksync/select_plan_skus", plan=plan), {"skus": None}).fetchone()
        assert planned is not None
        counts = _outcome_counts(conn, "stocksync/select_outcome_counts", outcomes_table=outcomes)
        counts["unchanged"] += int(planned[0]) - audited  # the SKUs the audit leaves out
        t = mark("audit", t)

        if before_lock is not None:
            before_lock()
        lock_wait = settings.lock_timeout_seconds
        # the shop's own transaction: its stock locked against checkout until the write commits; a
        # shop read in place (stocksync's own database, the shop's role) is locked and written
        # inside this very transaction, from the tables where they stand
        in_place = mirror.in_place and isinstance(port, InPlaceShop)
        session = (port.apply_in_place(conn, lock_timeout_seconds=lock_wait) if in_place  # type: ignore[union-attr]
                   else port.apply_session(lock_timeout_seconds=lock_wait))
        with session as locked:
            locked_at = time.perf_counter()
            timings["lock_wait"] = locked_at - t
            if after_lock is not None:
                after_lock()

            after = _locked_demand(conn, locked, question)
            moved = [row[0] for row in conn.execute(
                query("stocksync/select_moved_skus", before=before, after=after)).fetchall()]
            if moved:  # their outcomes, audit rows and writes again, from the locked stock and demand
                replace_stock_rows(conn, mirror, moved, locked.read_stock(moved))
                in_plan = conn.execute(query("stocksync/select_plan_skus", plan=plan), {"skus": moved}).fetchone()
                assert in_plan is not None
                moved_before = _outcome_counts(conn, "stocksync/select_outcome_counts_for_skus", {"skus": moved},
                                               outcomes_table=outcomes)
                moved_before["unchanged"] += int(in_plan[0]) - moved_before.total()
                conn.execute(query("stocksync/delete_moved_outcomes", outcomes_table=outcomes, writes=writes),
                             {"run_id": run_id, "skus": moved})
                recomputed = sql.Identifier("moved_outcomes")
                conn.execute(query("stocksync/create_moved_outcomes", moved=recomputed, outcomes_table=outcomes))
                conn.execute(query("stocksync/insert_moved_outcomes", moved=recomputed, audited=query(
                    "stocksync/select_audited_outcomes", outcomes=outcomes_query(plan, after, mirror))),
                    {"skus": moved})
                conn.execute(query("stocksync/insert_sku_audit", outcomes_table=recomputed),
                             {"run_id": run_id, "snapshot_id": snapshot_id})
                conn.execute(query("stocksync/insert_writes", writes=writes, outcomes_table=recomputed))
                moved_after = _outcome_counts(conn, "stocksync/select_outcome_counts", outcomes_table=recomputed)
                moved_after["unchanged"] += int(in_plan[0]) - moved_after.total()
                counts.subtract(moved_before)
                counts.update(moved_after)
            if before_write is not None:  # the drift this apply corrects (audit rows are final here)
                before_write(conn, counts)
            written = len(locked.write_stock_from(writes) if isinstance(locked, InPlaceApply)
                          else locked.write_stock(_writes(conn, writes)))
            conn.execute(query("stocksync/insert_applied_snapshot"), {"snapshot_id": snapshot_id, "run_id": run_id})
            mark("locked_work", locked_at)
            # the snapshot's newest sequence (the feed position of a full sync) and the audit's size
            runs.record_applied(conn, run_id, "applied", counts, sum(counts.values()), watermark,
                    {"rows_written": written, "moved_skus": len(moved), "audited": audited,
                     "snapshot_max_seq": int(planned[1]) if planned[1] is not None else None,
                     "timings": {k: round(v, 4) for k, v in timings.items()}})
        # the shop committed its write here; stocksync's record commits right after (a re-run after a
        # failure in between changes nothing in the shop: its sequence guard skips what is written)
    committed_at = time.perf_counter()
    rows_locked_at = locked.rows_locked_at
    result = ApplyResult("applied", {k: v for k, v in counts.items() if v}, written, len(moved),
                         committed_at - locked_at, committed_at - started, timings,
                         committed_at - rows_locked_at if rows_locked_at is not None else 0.0)
    log.info("applied snapshot %s: %s", snapshot_id, result.as_dict())
    return result
