"""The merge rule (docs/architecture.md):

    new_qty = max(0, available - unsent_order_qty - active_cart_qty)

checked three ways: the plan's formula for one SKU per hand-worked case (`RULE_CASES`), the SQL that finds the
in-window demand (`shop/select_in_window_demand.sql` through `merge.fill_demand`), and
the plan and its apply (`merge.build_plan`, `apply.apply_plan`) against the real
PostgreSQL test cluster. Orders and carts are inserted directly with explicit times
relative to a fixed watermark `W` (one hour before the database's `now()`); every
expected number is worked out by hand in the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg import sql

from include.stocksync.config.settings import CONFIG_PATH, Settings, load_settings
from include.stocksync.store.db import connect, run_key, staging_identifier
from include.stocksync.sync import merge
from include.stocksync.sync.apply import apply_plan
from include.stocksync.sync.extract import create_raw_table
from include.stocksync.sync.merge import Watermark
from include.stocksync.sync.pipeline import drop_expired_staging, open_run, release_freeze
from include.stocksync.sync.shop_mirror import drop_copies
from tests.conftest import stock_fingerprint, try_place_order

MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

# The run-level keys the hand-computed numbers rely on, pinned explicitly.
PINNED = {"adjustment_mode": "unsent_orders", "unsent_statuses": ["placed", "paid", "processing"],
          "unsent_order_cutoff_hours": 24, "active_cart_cutoff_hours": 24, "watermark_source": "wms"}


def settings_for(**conf: Any) -> Settings:
    return load_settings(CONFIG_PATH, environ={}).for_run({**PINNED, **conf})


# --------------------------------------------------------------------------------------
# Shop fixtures written straight into the reference schema
# --------------------------------------------------------------------------------------

def db_now(dsn: str) -> datetime:
    with connect(dsn) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def add_stock(conn: psycopg.Connection, rows: dict[str, tuple[int, int]]) -> None:
    """`{sku: (qty, wms_seq)}` into products and stock."""
    for sku, (qty, seq) in rows.items():
        conn.execute("INSERT INTO shop.products (sku, name) VALUES (%s, %s)", (sku, f"product {sku}"))
        conn.execute("INSERT INTO shop.stock (sku, qty, wms_seq) VALUES (%s, %s, %s)", (sku, qty, seq))


def add_order(conn: psycopg.Connection, lines: dict[str, int], created_at: datetime, *,
              status: str = "placed", acknowledged_at: datetime | None = None) -> int:
    row = conn.execute("INSERT INTO shop.orders (status, created_at, wms_acknowledged_at) VALUES (%s, %s, %s) "
                       "RETURNING order_id", (status, created_at, acknowledged_at)).fetchone()
    assert row is not None
    for sku, qty in lines.items():
        conn.execute("INSERT INTO shop.order_lines (order_id, sku, qty) VALUES (%s, %s, %s)", (row[0], sku, qty))
    return int(row[0])


def add_cart(conn: psycopg.Connection, lines: dict[str, int], updated_at: datetime) -> None:
    row = conn.execute("INSERT INTO shop.carts (updated_at) VALUES (%s) RETURNING cart_id", (updated_at,)).fetchone()
    assert row is not None
    for sku, qty in lines.items():
        conn.execute("INSERT INTO shop.cart_lines (cart_id, sku, qty) VALUES (%s, %s, %s)", (row[0], sku, qty))


def demand(dsn: str, settings: Settings, watermark: Watermark) -> dict[str, tuple[int, int]]:
    """`{sku: (unsent_qty, cart_qty)}` as the SQL computes it."""
    with connect(dsn) as conn, conn.transaction():
        merge.fill_demand(conn, "t", merge.demand_params(settings, watermark))
        rows = conn.execute("SELECT * FROM t").fetchall()
    return {sku: (int(unsent), int(cart)) for sku, unsent, cart in rows}


# --------------------------------------------------------------------------------------
# 1. The pure rule
# --------------------------------------------------------------------------------------

# (available, unsent order units, active cart units) -> (new_qty, outcome), worked out by hand.
# The shop held 999 of each before, so every SKU's outcome is 'changed' unless the rule clamped it.
RULE_CASES = {
    "R1": ((10, 0, 0), (10, "changed")),
    "R2": ((10, 3, 0), (7, "changed")),
    "R3": ((10, 3, 2), (5, "changed")),
    "R4": ((10, 7, 3), (0, "changed")),   # exactly zero is not a clamp
    "R5": ((10, 8, 3), (0, "clamped")),   # 10 - 8 - 3 = -1
    "R6": ((0, 5, 0), (0, "clamped")),
    "R7": ((0, 0, 0), (0, "changed")),
    "R8": ((3, 0, 4), (0, "clamped")),
    "R9": ((1_000_000_000, 1, 0), (999_999_999, "changed")),
}


def test_the_plan_applies_the_rule_to_each_sku(clean_shop: str) -> None:
    """The product's formula (the plan built in SQL from the WMS counts and the shop's in-window
    orders and carts) against the rule worked out by hand for each case."""
    dsn = clean_shop
    now = db_now(dsn)
    w = now - HOUR
    raw = f"raw_rule_{uuid.uuid4().hex[:10]}"
    run_id = f"rule-{uuid.uuid4().hex[:8]}"
    with connect(dsn) as conn:
        add_stock(conn, {sku: (999, 0) for sku in RULE_CASES})
        for sku, ((_, unsent, carts), _) in RULE_CASES.items():
            if unsent:
                add_order(conn, {sku: unsent}, w - 10 * MIN)
            if carts:
                add_cart(conn, {sku: carts}, now - 10 * MIN)
        create_raw_table(conn, raw)
        insert = sql.SQL("INSERT INTO {} (page, sku, on_hand, non_usable, allocated, available, seq) "
                         "VALUES (0, %s, %s, '0', '0', %s, '1')").format(staging_identifier(raw))
        conn.cursor().executemany(insert, [(sku, str(case[0]), str(case[0])) for sku, (case, _) in RULE_CASES.items()])
        conn.commit()
    try:
        with connect(dsn, autocommit=True) as conn:
            plan = merge.build_plan(conn, run_id, raw, settings_for(adjustment_mode="unsent_orders_and_carts"),
                                    Watermark("wms", w)).plan_table
            rows = conn.execute(f"SELECT sku, adjustment, new_qty, outcome FROM stocksync.{plan}").fetchall()
    finally:
        with connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS stocksync.{raw}")
            conn.execute(f"DROP TABLE IF EXISTS stocksync.{merge.plan_table(run_id)}")
    assert {sku: (adjustment, new_qty, outcome) for sku, adjustment, new_qty, outcome in rows} == {
        sku: (unsent + carts, *expected) for sku, ((_, unsent, carts), expected) in RULE_CASES.items()}


# --------------------------------------------------------------------------------------
# 2. The watermark
# --------------------------------------------------------------------------------------

def test_choose_watermark() -> None:
    counted = datetime(2025, 3, 1, 2, 30, 5, tzinfo=timezone.utc)
    requested = datetime(2025, 3, 1, 2, 30, 0, tzinfo=timezone.utc)
    wms = settings_for(watermark_source="wms")
    assert merge.choose_watermark(wms, counted, requested) == Watermark("wms", counted)
    # No watermark from the WMS: fall back to the time the snapshot request started.
    assert merge.choose_watermark(wms, None, requested) == Watermark("request_time", requested)
    # Configured for request_time: the WMS's watermark is not used even when present.
    req = settings_for(watermark_source="request_time")
    assert merge.choose_watermark(req, counted, requested) == Watermark("request_time", requested)


def test_demand_params_follow_settings() -> None:
    at = datetime(2025, 3, 1, tzinfo=timezone.utc)
    params = merge.demand_params(settings_for(adjustment_mode="unsent_orders_and_carts",
                                              unsent_order_cutoff_hours=2, active_cart_cutoff_hours=0.5),
                                 Watermark("wms", at))
    assert params == {"include_orders": True, "include_carts": True, "unsent_cutoff_seconds": 7200.0,
                      "cart_cutoff_seconds": 1800.0, "unsent_statuses": ["placed", "paid", "processing"],
                      "watermark_source": "wms", "watermark": at}
    assert merge.demand_params(settings_for(), Watermark("wms", at))["include_carts"] is False
    none = merge.demand_params(settings_for(adjustment_mode="none"), Watermark("wms", at))
    assert none["include_orders"] is False and none["include_carts"] is False


# --------------------------------------------------------------------------------------
# 3. In-window demand (shop/select_in_window_demand.sql)
# --------------------------------------------------------------------------------------

@pytest.fixture
def window(clean_shop: str) -> tuple[str, datetime]:
    """A shop with orders and carts around the watermark W = now() - 1 hour.

    SKU  what                                                         unsent (wms, 24h)
    P01  unacknowledged 'placed', W-10m, 3 units; plus 10 on P10's order  13
    P02  acknowledged at W-5m (before W)                                     -
    P03  created W-20m, acknowledged at W+10m (after W)                      5
    P04  unacknowledged, created W-24h (= now-25h, beyond the 24h cutoff)    -
    P05  unacknowledged, created W-2h (= now-3h: inside 24h, beyond 2h)      2
    P06  status 'cancelled'                                                  -
    P07  status 'shipped'                                                    -
    P08  'placed' 2 + 'paid' 1 + 'processing' 4                              7
    P09  unacknowledged, created W+30m; plus 9 acknowledged at W-1m          2
    P10  1 unit on the same order as P01's 10 (W-15m)                        1
    P11  only in carts                                                       -
    P12  only in a stale cart                                                -
    P13  unacknowledged, created W-22h (= now-23h)                           4
    P14  created exactly at W, acknowledged at W+1m                          3
    P15  'cancelled', created W+5m                                           -

    Carts: P11 5 (now-1h); P01 2 (now-2h); P12 4 (now-30h); P11 1 + P08 3 (now-10m).
    """
    dsn = clean_shop
    now = db_now(dsn)
    w = now - HOUR
    with connect(dsn) as conn:
        add_stock(conn, {f"P{i:02d}": (100, 0) for i in range(1, 16)})
        add_order(conn, {"P01": 3}, w - 10 * MIN)
        add_order(conn, {"P02": 4}, w - 20 * MIN, acknowledged_at=w - 5 * MIN)
        add_order(conn, {"P03": 5}, w - 20 * MIN, acknowledged_at=w + 10 * MIN)
        add_order(conn, {"P04": 6}, w - 24 * HOUR)
        add_order(conn, {"P05": 2}, w - 2 * HOUR)
        add_order(conn, {"P06": 7}, w - 10 * MIN, status="cancelled")
        add_order(conn, {"P07": 8}, w - 10 * MIN, status="shipped")
        add_order(conn, {"P08": 2}, w - 30 * MIN, status="placed")
        add_order(conn, {"P08": 1}, w - 30 * MIN, status="paid")
        add_order(conn, {"P08": 4}, w - 30 * MIN, status="processing")
        add_order(conn, {"P09": 2}, w + 30 * MIN)
        add_order(conn, {"P09": 9}, w - 20 * MIN, acknowledged_at=w - MIN)
        add_order(conn, {"P10": 1, "P01": 10}, w - 15 * MIN)
        add_order(conn, {"P13": 4}, w - 22 * HOUR)
        add_order(conn, {"P14": 3}, w, acknowledged_at=w + MIN)
        add_order(conn, {"P15": 5}, w + 5 * MIN, status="cancelled")
        add_cart(conn, {"P11": 5}, now - HOUR)
        add_cart(conn, {"P01": 2}, now - 2 * HOUR)
        add_cart(conn, {"P12": 4}, now - 30 * HOUR)
        add_cart(conn, {"P11": 1, "P08": 3}, now - 10 * MIN)
        conn.commit()
    return dsn, w


def test_demand_wms_watermark(window: tuple[str, datetime]) -> None:
    dsn, w = window
    assert demand(dsn, settings_for(), Watermark("wms", w)) == {
        "P01": (13, 0), "P03": (5, 0), "P05": (2, 0), "P08": (7, 0), "P09": (2, 0), "P10": (1, 0),
        "P13": (4, 0), "P14": (3, 0),
    }


def test_demand_default_cutoff_is_one_day(window: tuple[str, datetime]) -> None:
    dsn, w = window
    shipped = load_settings(CONFIG_PATH, environ={})  # the shipped defaults, nothing pinned
    got = demand(dsn, shipped, Watermark("wms", w))
    assert got["P13"] == (4, 0)   # 23 hours old: still counted
    assert "P04" not in got       # 25 hours old: the WMS is assumed to have it


def test_demand_custom_order_cutoff(window: tuple[str, datetime]) -> None:
    dsn, w = window
    # 2 hours: P05 (3h old) and P13 (23h old) drop out.
    assert demand(dsn, settings_for(unsent_order_cutoff_hours=2), Watermark("wms", w)) == {
        "P01": (13, 0), "P03": (5, 0), "P08": (7, 0), "P09": (2, 0), "P10": (1, 0), "P14": (3, 0),
    }


def test_demand_custom_unsent_statuses(window: tuple[str, datetime]) -> None:
    dsn, w = window
    # P15 is cancelled too, but created after W: still unacknowledged and in window, so it counts.
    assert demand(dsn, settings_for(unsent_statuses=["cancelled", "shipped"]), Watermark("wms", w)) == {
        "P06": (7, 0), "P07": (8, 0), "P15": (5, 0),
    }
    assert demand(dsn, settings_for(unsent_statuses=["paid"]), Watermark("wms", w)) == {"P08": (1, 0)}


def test_demand_request_time_watermark(window: tuple[str, datetime]) -> None:
    dsn, w = window
    # No WMS watermark: W is when the snapshot request started. An order the WMS never acknowledged
    # is uncounted whenever it was placed: P01, P05, P08, P10 and P13 were all placed before W and
    # still count (taking "placed before the request" as counted would raise their stock: oversell).
    # Acknowledged before W (P02, P09's 9 units): counted by the WMS. Acknowledged after W (P03, P14):
    # not in the snapshot.
    got = demand(dsn, settings_for(watermark_source="request_time"), Watermark("request_time", w))
    assert got == {
        "P01": (13, 0), "P03": (5, 0), "P05": (2, 0), "P08": (7, 0), "P09": (2, 0), "P10": (1, 0),
        "P13": (4, 0), "P14": (3, 0),
    }
    assert got == demand(dsn, settings_for(), Watermark("wms", w))


def test_demand_adjustment_none_counts_nothing(window: tuple[str, datetime]) -> None:
    dsn, w = window
    assert demand(dsn, settings_for(adjustment_mode="none"), Watermark("wms", w)) == {}
    assert demand(dsn, settings_for(adjustment_mode="none"), Watermark("request_time", w)) == {}


def test_demand_with_carts(window: tuple[str, datetime]) -> None:
    dsn, w = window
    carts = settings_for(adjustment_mode="unsent_orders_and_carts")
    # Carts within 24h: P11 5+1, P01 2, P08 3; the 30h-old P12 cart is ignored.
    assert demand(dsn, carts, Watermark("wms", w)) == {
        "P01": (13, 2), "P03": (5, 0), "P05": (2, 0), "P08": (7, 3), "P09": (2, 0), "P10": (1, 0),
        "P11": (0, 6), "P13": (4, 0), "P14": (3, 0),
    }


def test_demand_cart_cutoff(window: tuple[str, datetime]) -> None:
    dsn, w = window
    # 1.5 hours: the 2h-old P01 cart drops out; the 1h and 10m carts stay.
    carts = settings_for(adjustment_mode="unsent_orders_and_carts", active_cart_cutoff_hours=1.5)
    got = demand(dsn, carts, Watermark("wms", w))
    assert got["P01"] == (13, 0)
    assert got["P11"] == (0, 6)
    assert got["P08"] == (7, 3)
    assert "P12" not in got


def test_demand_ignores_carts_in_unsent_orders_mode(window: tuple[str, datetime]) -> None:
    dsn, w = window
    got = demand(dsn, settings_for(adjustment_mode="unsent_orders"), Watermark("wms", w))
    assert "P11" not in got
    assert all(cart == 0 for _, cart in got.values())


# --------------------------------------------------------------------------------------
# 4. The plan and its apply
# --------------------------------------------------------------------------------------

PLAN_COLUMNS = "sku, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome"

# (sku, old_qty, old_seq, wms_available, wms_seq, adjustment, new_qty, outcome), worked out by hand:
EXPECTED_PLAN = [
    ("S1", 10, 5, 15, 6, 3, 12, "changed"),     # 15 - 3 = 12
    ("S2", 8, 5, 8, 7, 0, 8, "unchanged"),      # 8 - 0 = 8 = old (seq moves 5 -> 7)
    ("S3", 5, 1, 2, 2, 5, 0, "clamped"),        # 2 - 5 = -3 -> 0
    ("S4", 7, 10, 50, 9, 1, 7, "stale"),        # seq 9 < 10: keep 7
    ("S6", 0, 0, 4, 1, 0, 4, "changed"),        # the order acknowledged before W is not subtracted
    ("S7", 9, 3, 12, 4, 3, 9, "unchanged"),     # 12 - 3 = 9 = old
    ("S8", 6, 2, 4, 3, 4, 0, "changed"),        # 4 - 4 = 0 exactly: not a clamp
    ("ZZ-404", None, None, 4, 1, 0, None, "unknown"),
]
EXPECTED_COUNTS = {"changed": 3, "unchanged": 2, "clamped": 1, "stale": 1, "unknown": 1}
# (sku, qty, wms_seq) after the apply: every known SKU but the stale S4 takes the WMS seq.
EXPECTED_STOCK = [("S1", 12, 6), ("S2", 8, 7), ("S3", 0, 2), ("S4", 7, 10), ("S6", 4, 1), ("S7", 9, 4),
                  ("S8", 0, 3)]


class Scenario:
    def __init__(self, dsn: str, watermark: Watermark, raw: str, run_id: str) -> None:
        self.dsn = dsn
        self.watermark = watermark
        self.raw = raw
        self.run_id = run_id
        self.plan: str | None = None

    def build(self, settings: Settings) -> merge.PlanSummary:
        with connect(self.dsn, autocommit=True) as conn:
            summary = merge.build_plan(conn, self.run_id, self.raw, settings, self.watermark)
        self.plan = summary.plan_table
        return summary

    def plan_rows(self) -> list[tuple[Any, ...]]:
        with connect(self.dsn) as conn:
            return conn.execute(f"SELECT {PLAN_COLUMNS} FROM stocksync.{self.plan} ORDER BY sku").fetchall()

    def apply(self, run_id: str, settings: Settings, snapshot_id: str = "snap-A", **hooks: Any) -> Any:
        assert self.plan is not None
        with connect(self.dsn, autocommit=True) as conn:
            return apply_plan(conn, run_id=run_id, snapshot_id=snapshot_id, plan_table=self.plan,
                              settings=settings, watermark=self.watermark, **hooks)


@pytest.fixture
def scenario(clean_shop: str) -> Iterator[Scenario]:
    """Shop stock, orders around W = now() - 1h and a raw WMS table (text values, as extracted)."""
    dsn = clean_shop
    now = db_now(dsn)
    w = now - HOUR
    raw = f"raw_test_{uuid.uuid4().hex[:10]}"
    run_id = f"merge-{uuid.uuid4().hex[:8]}"
    with connect(dsn) as conn:
        add_stock(conn, {"S1": (10, 5), "S2": (8, 5), "S3": (5, 1), "S4": (7, 10), "S6": (0, 0),
                         "S7": (9, 3), "S8": (6, 2)})
        add_order(conn, {"S1": 3}, w - 10 * MIN)                          # unsent
        add_order(conn, {"S3": 5, "S7": 3}, w - 20 * MIN)                 # unsent
        add_order(conn, {"S4": 1}, w - 5 * MIN)                           # unsent (S4 is stale anyway)
        add_order(conn, {"S6": 2}, w - 30 * MIN, acknowledged_at=w - 20 * MIN)  # counted by the WMS
        add_order(conn, {"S8": 4}, w + 5 * MIN, status="paid")            # unsent
        add_cart(conn, {"S2": 3}, now - 10 * MIN)                         # only in the carts mode
        add_cart(conn, {"S1": 1}, now - 30 * HOUR)                        # stale cart
        create_raw_table(conn, raw)
        # (page, sku, on_hand, non_usable, allocated, available, seq): on_hand - non_usable - allocated = available
        raw_rows = [
            (0, "S1", "20", "2", "3", "15", "6"),
            (0, "S2", "8", "0", "0", "8", "7"),
            (0, "S3", "2", "0", "0", "2", "2"),
            (0, "S4", "55", "5", "0", "50", "9"),
            (1, "S6", "4", "0", "0", "4", "1"),
            (1, "S7", "12", "0", "0", "12", "4"),
            (1, "S8", "5", "1", "0", "4", "3"),
            (1, "ZZ-404", "4", "0", "0", "4", "1"),
        ]
        insert = sql.SQL("INSERT INTO {} (page, sku, on_hand, non_usable, allocated, available, seq) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)").format(staging_identifier(raw))
        conn.cursor().executemany(insert, raw_rows)
        conn.commit()
    made = Scenario(dsn, Watermark("wms", w), raw, run_id)
    yield made
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS stocksync.{raw}")
        if made.plan:
            conn.execute(f"DROP TABLE IF EXISTS stocksync.{made.plan}")
        drop_copies(conn, run_id)  # what the run's teardown drops: no view on the shop outlives a test


def test_build_plan_outcomes(scenario: Scenario) -> None:
    summary = scenario.build(settings_for())
    assert summary.plan_table == merge.plan_table(scenario.run_id)
    assert scenario.plan_rows() == EXPECTED_PLAN
    assert summary.skus == 8
    assert summary.outcomes == EXPECTED_COUNTS
    # new - old over known SKUs: +2 (S1) + 0 - 5 (S3) + 0 + 4 (S6) + 0 - 6 (S8) = -5
    assert summary.delta_units == -5


def test_build_plan_is_rebuilt_on_every_call(scenario: Scenario) -> None:
    scenario.build(settings_for())
    summary = scenario.build(settings_for())
    assert summary.skus == 8
    assert scenario.plan_rows() == EXPECTED_PLAN


@pytest.mark.parametrize(("mode", "expected"), [
    # No adjustment: the WMS figure as is (S4 stays stale).
    ("none", {"S1": 15, "S2": 8, "S3": 2, "S4": 7, "S6": 4, "S7": 12, "S8": 4, "ZZ-404": None}),
    ("unsent_orders", {"S1": 12, "S2": 8, "S3": 0, "S4": 7, "S6": 4, "S7": 9, "S8": 0, "ZZ-404": None}),
    # The 10-minute-old cart holds 3 x S2: 8 - 3 = 5; the 30-hour-old S1 cart is ignored.
    ("unsent_orders_and_carts",
     {"S1": 12, "S2": 5, "S3": 0, "S4": 7, "S6": 4, "S7": 9, "S8": 0, "ZZ-404": None}),
])
def test_build_plan_per_adjustment_mode(scenario: Scenario, mode: str, expected: dict[str, int | None]) -> None:
    scenario.build(settings_for(adjustment_mode=mode))
    assert {row[0]: row[6] for row in scenario.plan_rows()} == expected


def audit(dsn: str, run_id: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return conn.execute(f"SELECT {PLAN_COLUMNS} FROM stocksync.sku_audit WHERE run_id = %s ORDER BY sku",
                            (run_id,)).fetchall()


def run_record(dsn: str, run_id: str) -> tuple[Any, ...]:
    with connect(dsn) as conn:
        row = conn.execute("SELECT status, changed, unchanged, stale, clamped, duplicate, unknown, watermark, "
                           "watermark_source FROM stocksync.sync_runs WHERE run_id = %s", (run_id,)).fetchone()
    assert row is not None
    return row


def stock_rows(dsn: str) -> list[tuple[Any, ...]]:
    return [row[:3] for row in stock_fingerprint(dsn)]


def test_apply_plan_end_to_end(scenario: Scenario) -> None:
    dsn = scenario.dsn
    settings = settings_for()
    scenario.build(settings)
    stale_before = [row for row in stock_fingerprint(dsn) if row[0] == "S4"]
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))

    result = scenario.apply(scenario.run_id, settings)

    assert result.status == "applied"
    assert result.counts == EXPECTED_COUNTS
    assert result.rows_written == 6  # every known SKU but the stale one (S2 and S7: seq only)
    assert result.moved_skus == 0
    assert stock_rows(dsn) == EXPECTED_STOCK
    # The stale row is untouched, byte for byte (not even updated_at).
    assert [row for row in stock_fingerprint(dsn) if row[0] == "S4"] == stale_before
    # One audit row per SKU, with the same numbers as the plan.
    assert audit(dsn, scenario.run_id) == EXPECTED_PLAN
    assert run_record(dsn, scenario.run_id) == ("applied", 3, 2, 1, 1, 0, 1, scenario.watermark.at, "wms")
    with connect(dsn) as conn:
        assert conn.execute("SELECT run_id FROM stocksync.applied_snapshots WHERE snapshot_id = 'snap-A'"
                            ).fetchall() == [(scenario.run_id,)]


def test_apply_plan_twice_for_one_run_changes_nothing(scenario: Scenario) -> None:
    dsn = scenario.dsn
    settings = settings_for()
    scenario.build(settings)
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))
    assert scenario.apply(scenario.run_id, settings).status == "applied"
    fingerprint = stock_fingerprint(dsn)

    again = scenario.apply(scenario.run_id, settings)

    assert again.status == "already_applied"
    assert again.counts == EXPECTED_COUNTS
    assert again.rows_written == 0
    assert stock_fingerprint(dsn) == fingerprint
    assert audit(dsn, scenario.run_id) == EXPECTED_PLAN
    assert run_record(dsn, scenario.run_id)[0] == "applied"


def test_same_snapshot_under_another_run_is_duplicate(scenario: Scenario) -> None:
    dsn = scenario.dsn
    settings = settings_for()
    scenario.build(settings)
    base = load_settings(CONFIG_PATH, environ={})
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=base)
    assert scenario.apply(scenario.run_id, settings).status == "applied"
    fingerprint = stock_fingerprint(dsn)

    second = f"{scenario.run_id}-again"
    open_run(dsn, run_id=second, dag_id="t", settings=base)
    result = scenario.apply(second, settings)

    assert result.status == "duplicate"
    assert result.counts == {"duplicate": 8}
    assert stock_fingerprint(dsn) == fingerprint
    # Every SKU recorded as duplicate, new = old = the current stock.
    assert [(row[0], row[1], row[6], row[7]) for row in audit(dsn, second)] == [
        ("S1", 12, 12, "duplicate"), ("S2", 8, 8, "duplicate"), ("S3", 0, 0, "duplicate"),
        ("S4", 7, 7, "duplicate"), ("S6", 4, 4, "duplicate"), ("S7", 9, 9, "duplicate"),
        ("S8", 0, 0, "duplicate"), ("ZZ-404", None, None, "duplicate"),
    ]
    assert run_record(dsn, second)[:7] == ("duplicate", 0, 0, 0, 0, 8, 0)
    # The first run's audit is untouched.
    assert audit(dsn, scenario.run_id) == EXPECTED_PLAN


def test_apply_counts_orders_committed_after_the_plan(scenario: Scenario) -> None:
    """Rule 3: the numbers written come from inside the transaction, after the lock.

    Between the audit and the lock (the `before_lock` hook) a shopper buys 2 x S1 through
    the real checkout (shop S1 10 -> 8) and S3's unsent order is cancelled.
    S1: 15 - (3 + 2) = 10, from old 8. S3: 2 - 0 = 2 (no longer clamped). S7 shared
    S3's order, so its demand drops too: 12 - 0 = 12.
    """
    dsn = scenario.dsn
    settings = settings_for()
    scenario.build(settings)
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))

    def meanwhile() -> None:
        order_id, problem = try_place_order(dsn, [("S1", 2)])
        assert problem is None and order_id is not None
        with connect(dsn) as other:
            other.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id IN "
                          "(SELECT order_id FROM shop.order_lines WHERE sku = 'S3')")
            other.commit()

    result = scenario.apply(scenario.run_id, settings, before_lock=meanwhile)

    assert result.status == "applied"
    assert result.moved_skus == 3  # S1, S3, S7
    assert result.counts == {"changed": 5, "unchanged": 1, "stale": 1, "unknown": 1}
    assert stock_rows(dsn) == [("S1", 10, 6), ("S2", 8, 7), ("S3", 2, 2), ("S4", 7, 10), ("S6", 4, 1),
                               ("S7", 12, 4), ("S8", 0, 3)]
    rows = {row[0]: row for row in audit(dsn, scenario.run_id)}
    assert rows["S1"] == ("S1", 8, 5, 15, 6, 5, 10, "changed")
    assert rows["S3"] == ("S3", 5, 1, 2, 2, 0, 2, "changed")
    assert rows["S7"] == ("S7", 9, 3, 12, 4, 0, 12, "changed")
    assert run_record(dsn, scenario.run_id)[:7] == ("applied", 5, 1, 1, 0, 0, 1)


def test_the_audit_leaves_out_what_stays_and_sku_outcomes_gives_it_back(scenario: Scenario) -> None:
    """The audit holds only what moves: a SKU left as it was with no in-window demand (S9: shop 5
    at seq 2, WMS 5 at seq 2) gets no audit row; the run record counts it and stocksync.sku_outcomes()
    gives its row from the plan: old = new = WMS available, old seq = WMS seq, adjustment 0."""
    dsn = scenario.dsn
    with connect(dsn) as conn:
        add_stock(conn, {"S9": (5, 2)})
        conn.execute(sql.SQL("INSERT INTO {} (page, sku, on_hand, non_usable, allocated, available, seq) "
                             "VALUES (1, 'S9', '5', '0', '0', '5', '2')").format(staging_identifier(scenario.raw)))
        conn.commit()
    settings = settings_for()
    scenario.build(settings)
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))

    result = scenario.apply(scenario.run_id, settings)

    assert result.counts == {**EXPECTED_COUNTS, "unchanged": 3}
    assert audit(dsn, scenario.run_id) == EXPECTED_PLAN  # S2 (seq written) and S7 (demand) stay audited
    with connect(dsn) as conn:
        every = conn.execute(f"SELECT {PLAN_COLUMNS} FROM stocksync.sku_outcomes(%s, %s) ORDER BY sku",
                             (scenario.run_id, f"stocksync.{scenario.plan}")).fetchall()
    assert every == sorted([*EXPECTED_PLAN, ("S9", 5, 2, 5, 2, 0, 5, "unchanged")], key=lambda r: r[0])
    assert run_record(dsn, scenario.run_id)[:7] == ("applied", 3, 3, 1, 1, 0, 1)


def relation_kinds(dsn: str, run_id: str) -> list[tuple[str, str]]:
    """(name, pg_class.relkind) of the run's copies of the shop (stocksync.shop_*_<run key>)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON "
                            "n.oid = c.relnamespace WHERE n.nspname = 'stocksync' AND c.relname LIKE %s "
                            "ORDER BY 1", ("shop\\_%\\_" + run_key(run_id),)).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def holds_back_shop_ddl(dsn: str, run_id: str) -> bool:
    """Whether one of the run's relations holds back a type change of the shop's stock column (tried,
    then rolled back). PostgreSQL names the first dependent view in the error; the run's views are
    asked about alone, since other runs of the session may hold views of their own."""
    key = run_key(run_id)
    with connect(dsn) as conn:
        others = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE n.nspname = 'stocksync' AND c.relkind = 'v' AND c.relname LIKE 'shop\\_%%' "
                              "AND c.relname NOT LIKE %s", ("%" + key,)).fetchall()
        try:
            for (name,) in others:  # in this transaction only: rolled back below
                conn.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier("stocksync", name)))
            conn.execute("ALTER TABLE shop.stock ALTER COLUMN qty TYPE bigint")
        except psycopg.errors.FeatureNotSupported as exc:
            return key in str(exc)
        finally:
            conn.rollback()
    return False


def test_one_database_reads_the_shop_in_place_for_the_run_only(scenario: Scenario) -> None:
    """The shop in stocksync's own database, read with the same role: the run's catalog and stock are
    views on the shop's tables (relkind 'v'), nothing copied; the plan and the apply (with SKUs
    whose demand moved under the lock, recomputed from the locked stock) are the hand-worked ones;
    the teardown drops the views, so the shop's own DDL is held back only while the run lasts."""
    dsn = scenario.dsn
    settings = settings_for()
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))
    scenario.build(settings)
    assert [kind for _, kind in relation_kinds(dsn, scenario.run_id)] == ["v", "v"]
    assert scenario.plan_rows() == EXPECTED_PLAN
    assert holds_back_shop_ddl(dsn, scenario.run_id)

    def meanwhile() -> None:  # 2 x S1 bought between the plan and the lock: S1 is recomputed
        order_id, problem = try_place_order(dsn, [("S1", 2)])
        assert problem is None and order_id is not None

    result = scenario.apply(scenario.run_id, settings, before_lock=meanwhile)
    assert result.status == "applied" and result.moved_skus == 1
    # S1: WMS 15 - (3 + 2) unsent = 10; the rest as EXPECTED_STOCK
    assert stock_rows(dsn) == [("S1", 10, 6), *EXPECTED_STOCK[1:]]
    release_freeze(dsn, run_id=scenario.run_id, dag_id="t")
    assert relation_kinds(dsn, scenario.run_id) == []
    assert not holds_back_shop_ddl(dsn, scenario.run_id)


def test_the_staging_clean_up_drops_views_a_run_left(scenario: Scenario) -> None:
    """A run whose teardown never ran (its worker killed) leaves its views; the staging clean-up of
    a later run drops them with the run's other staging tables."""
    dsn = scenario.dsn
    open_run(dsn, run_id=scenario.run_id, dag_id="t", settings=load_settings(CONFIG_PATH, environ={}))
    scenario.build(settings_for())
    assert [kind for _, kind in relation_kinds(dsn, scenario.run_id)] == ["v", "v"]
    with connect(dsn) as conn:
        conn.execute("UPDATE stocksync.sync_runs SET status = 'failed', staging_table = %s, "
                     "finished_at = now() - interval '30 days' WHERE run_id = %s", (scenario.raw, scenario.run_id))
        conn.commit()
        assert drop_expired_staging(conn, 7) >= 1
    assert relation_kinds(dsn, scenario.run_id) == []
    assert not holds_back_shop_ddl(dsn, scenario.run_id)
