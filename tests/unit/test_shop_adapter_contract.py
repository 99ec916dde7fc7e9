"""The shop adapter contract (include/stocksync/shop/postgres/statements.py), checked against an adapter folder.

Which folder: `STOCKSYNC_SHOP_ADAPTER_DIR` (default: the reference adapter `include/sql/shop`), so a
deployment checks its own copy with
`STOCKSYNC_SHOP_ADAPTER_DIR=... bash scripts/test.sh tests/unit/test_shop_adapter_contract.py`.

Why these tests: stocksync's Python never looks inside the shop; it trusts each statement to take
the declared parameters and return the declared columns, and the seq guard, the freeze and the
locks are the statements' doing. So every statement is run for real, against the reference shop
tables on the test PostgreSQL (under the configured schema, and again under a renamed schema that
needs quoting: a statement that ignores `{shop}` reads the emptied default schema and fails), with
a small seeded shop whose expected answers are written out below. Composed statements are also run
the way their callers embed them (as a subquery).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from include.stocksync.shop import freeze
from include.stocksync.shop.postgres.statements import (
    BOOTSTRAP,
    BY_NAME,
    CONTRACT_FIXTURE,
    STATEMENTS,
    Statement,
    markdown_table,
)
from include.stocksync.store.db import (
    PROJECT_ROOT,
    REFERENCE_SHOP_ADAPTER,
    SHOP_ADAPTER_DIR_ENV,
    SHOP_SCHEMA_ENV,
    connect,
    query,
    shop_adapter_dir,
    shop_schema,
    sql_text,
)

# A renamed shop schema that needs quoting (space, capital, quote): proves `{shop}` is an identifier.
RENAMED_SCHEMA = 'Contract "shop" renamed'
SHOP_TABLES = ("order_lines", "orders", "cart_lines", "carts", "checkout_freezes", "stock", "products")
UNSENT = ["placed", "paid"]
DOCS = PROJECT_ROOT / "docs" / "shop-adapter.md"


# ---------------------------------------------------------------- the folder and its text


def test_every_contracted_statement_is_in_the_adapter_folder() -> None:
    folder = shop_adapter_dir()
    missing = [s.file for s in STATEMENTS if not (folder / s.file).is_file()]
    assert not missing, f"{folder} lacks {missing}"
    assert (folder / f"{BOOTSTRAP}.sql").is_file(), "apply_schema runs create_schema.sql (a real shop's: SELECT 1)"


def test_every_reference_statement_is_declared() -> None:
    """A new shop statement without a contract entry would be a seam nobody can adapt to."""
    files = {p.stem for p in REFERENCE_SHOP_ADAPTER.glob("*.sql")}
    assert files == set(BY_NAME) | {BOOTSTRAP}
    assert CONTRACT_FIXTURE not in files, "the reference statements run on the reference tables as they are"


def test_the_guide_carries_the_contract_table() -> None:
    assert markdown_table() in DOCS.read_text(), "re-render the table: shop_contract.markdown_table()"


def split_sql(text: str) -> tuple[str, list[str]]:
    """(the text with comments blanked out, the comments), string and identifier quotes respected."""
    code: list[str] = []
    comments: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("--", i) or text.startswith("/*", i):
            line = text.startswith("--", i)
            end = text.find("\n" if line else "*/", i + 2)
            end = len(text) if end < 0 else end + (0 if line else 2)
            comments.append(text[i:end])
            code.append(" ")
            i = end
        elif text[i] in "'\"":
            quote, end = text[i], i + 1
            while True:
                end = text.find(quote, end)
                if end < 0:
                    end = len(text)
                    break
                if text.startswith(quote * 2, end):
                    end += 2
                    continue
                end += 1
                break
            code.append(text[i:end])
            i = end
        else:
            code.append(text[i])
            i += 1
    return "".join(code), comments


@pytest.mark.parametrize("statement", STATEMENTS, ids=lambda s: s.name)
def test_statement_text_uses_only_declared_placeholders(statement: Statement) -> None:
    """psycopg formats `{name}` and substitutes `%(name)s` everywhere, comments included: an
    undeclared one fails at run time, deep inside a sync, so it fails here instead."""
    code, comments = split_sql(sql_text(f"shop/{statement.name}"))
    for comment in comments:
        assert not re.search(r"[{}]|%\(", comment), f"placeholder-like text in a comment: {comment!r}"
    names = [m.group("name") for m in re.finditer(r"%(?:\((?P<name>[^)]*)\))?(?P<fmt>.)", code.replace("%%", ""))]
    assert None not in names, "positional %s: use %(name)s"
    assert set(names) <= {p.name for p in statement.params}, f"undeclared parameters {set(names)}"
    placeholders = set(re.findall(r"\{(\w*)\}", code.replace("{{", "").replace("}}", "")))
    assert placeholders <= set(statement.identifier_names), f"undeclared identifiers {placeholders}"
    assert "shop" in placeholders, "the shop's schema must come from {shop}, not be written out"
    query(f"shop/{statement.name}", **{name: sql.Identifier("x") for name in statement.identifier_names})
    if statement.composed:
        assert not code.rstrip().endswith(";"), "embedded in a larger statement: no trailing ;"


# ---------------------------------------------------------------- a seeded reference shop


def reference_ddl(schema: str) -> sql.Composed:
    """The reference shop's DDL under `schema` (always the reference file: a real shop's adapter
    has a no-op create_schema.sql, but its statements are checked against the reference tables)."""
    return sql.SQL((REFERENCE_SHOP_ADAPTER / f"{BOOTSTRAP}.sql").read_text()).format(shop=sql.Identifier(schema))


@pytest.fixture(scope="session")
def reference_shops(shop_dsn: str) -> Iterator[str]:
    """The test database; RENAMED_SCHEMA is dropped at the end (each test creates what it uses)."""
    yield shop_dsn
    with connect(shop_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(RENAMED_SCHEMA)))


@dataclass
class Shop:
    dsn: str
    schema: str
    watermark: datetime  # between the early and the late WMS acknowledgement of the seeded orders

    def t(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def place_order(self, lines: list[tuple[str, int]], conn: psycopg.Connection | None = None) -> int:
        statement = sql.SQL("SELECT {}(%s, %s, 'contract')").format(self.t("place_order"))
        args = ([s for s, _ in lines], [q for _, q in lines])
        if conn is not None:
            return int(conn.execute(statement, args).fetchone()[0])  # type: ignore[index]
        with connect(self.dsn) as own:
            return int(own.execute(statement, args).fetchone()[0])  # type: ignore[index]


def empty(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
        sql.SQL(", ").join(sql.Identifier(schema, t) for t in SHOP_TABLES)))


def insert(conn: psycopg.Connection, table: sql.Identifier, columns: str, rows: list[tuple[Any, ...]]) -> None:
    names = columns.split()
    conn.cursor().executemany(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        table, sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join([sql.Placeholder()] * len(names))),
        rows)


def seed(conn: psycopg.Connection, schema: str) -> datetime:
    """The small shop every expectation below is written against. Returns the watermark.

    Catalog: A, B on sale with stock; C not on sale (stock 0); D on sale, no stock row yet.
    Orders (statuses counted: placed, paid; cutoff 24 h; watermark = now - 30 min):
      1 placed, unacknowledged            A x2   counted
      2 paid, acknowledged before the mark  A x1   not (in the WMS figure)
      3 placed, acknowledged after the mark B x1   counted
      4 cancelled, acknowledged long ago   B x4   not (status)
      5 placed, 48 h old                   A x5   not (cutoff)
      6 paid, unacknowledged              A x1 B x2 counted
    Carts (cutoff 1 h): one 10 min old (A x1, B x1), one 48 h old (A x3).
    """
    def t(name: str) -> sql.Identifier:
        return sql.Identifier(schema, name)

    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    mark = now - timedelta(minutes=30)
    insert(conn, t("products"), "sku name enabled",
           [(s, f"product {s}", s != "SKU-C") for s in ("SKU-A", "SKU-B", "SKU-C", "SKU-D")])
    insert(conn, t("stock"), "sku qty wms_seq", [("SKU-A", 10, 5), ("SKU-B", 3, 7), ("SKU-C", 0, 0)])
    orders = [  # status, age, acknowledged at, lines
        ("placed", timedelta(hours=1), None, [("SKU-A", 2)]),
        ("paid", timedelta(hours=2), mark - timedelta(minutes=10), [("SKU-A", 1)]),
        ("placed", timedelta(hours=1), mark + timedelta(minutes=25), [("SKU-B", 1)]),
        ("cancelled", timedelta(hours=1), mark - timedelta(minutes=20), [("SKU-B", 4)]),
        ("placed", timedelta(hours=48), None, [("SKU-A", 5)]),
        ("paid", timedelta(hours=3), None, [("SKU-A", 1), ("SKU-B", 2)]),
    ]
    for status, age, acked, lines in orders:
        order_id = conn.execute(sql.SQL("INSERT INTO {} (status, created_at, wms_acknowledged_at) "
                                        "VALUES (%s, %s, %s) RETURNING order_id").format(t("orders")),
                                (status, now - age, acked)).fetchone()[0]  # type: ignore[index]
        insert(conn, t("order_lines"), "order_id sku qty", [(order_id, sku, qty) for sku, qty in lines])
    for age, lines in ((timedelta(minutes=10), [("SKU-A", 1), ("SKU-B", 1)]), (timedelta(hours=48), [("SKU-A", 3)])):
        cart_id = conn.execute(sql.SQL("INSERT INTO {} (updated_at) VALUES (%s) RETURNING cart_id").format(t("carts")),
                               (now - age,)).fetchone()[0]  # type: ignore[index]
        insert(conn, t("cart_lines"), "cart_id sku qty", [(cart_id, sku, qty) for sku, qty in lines])
    return mark


def seeded_shop(dsn: str, schema: str) -> Shop:
    """(Re)create and empty the configured and `schema`'s reference shop, seed `schema`'s; then, when
    the adapter under test brings a contract fixture (its own tables built from the reference ones),
    run it."""
    with connect(dsn) as conn:
        for name in {shop_schema(), schema}:
            conn.execute(reference_ddl(name))  # per test: a contract fixture may replace place_order
            empty(conn, name)
        mark = seed(conn, schema)
        if (shop_adapter_dir() / f"{CONTRACT_FIXTURE}.sql").is_file():
            conn.execute(query(f"shop/{CONTRACT_FIXTURE}", shop=sql.Identifier(schema)))
        conn.commit()
    return Shop(dsn, schema, mark)


@pytest.fixture(params=["configured", "renamed"])
def shop(request: pytest.FixtureRequest, reference_shops: str, monkeypatch: pytest.MonkeyPatch) -> Shop:
    """The seeded shop under the configured schema, then under RENAMED_SCHEMA with the configured one
    left empty (so a statement that does not take `{shop}` finds nothing)."""
    if request.param == "configured":
        return seeded_shop(reference_shops, shop_schema())
    seeded = seeded_shop(reference_shops, RENAMED_SCHEMA)
    monkeypatch.setenv(SHOP_SCHEMA_ENV, RENAMED_SCHEMA)
    return seeded


@pytest.fixture
def reference_adapter(monkeypatch: pytest.MonkeyPatch) -> Path:
    """For the tests of the seam itself, which edit copies of the reference folder: whatever adapter
    the suite checks, they start from the reference one."""
    monkeypatch.delenv(SHOP_ADAPTER_DIR_ENV, raising=False)
    return REFERENCE_SHOP_ADAPTER


@pytest.fixture
def configured_shop(reference_shops: str, reference_adapter: Path) -> Shop:
    return seeded_shop(reference_shops, shop_schema())


# ---------------------------------------------------------------- running a statement


def column_types(conn: psycopg.Connection, cur: psycopg.Cursor) -> list[tuple[str, str]]:
    assert cur.description is not None
    oids = [c.type_code for c in cur.description]
    names = dict(conn.execute("SELECT oid, format_type(oid, NULL) FROM unnest(%s::oid[]) AS t(oid)", (oids,)))
    return [(c.name, names[c.type_code]) for c in cur.description]


def run(conn: psycopg.Connection, name: str, params: dict[str, Any] | None = None,
        **identifiers: sql.Composable) -> list[tuple[Any, ...]]:
    """Run statement `name` from the adapter folder with exactly its declared parameters; check the
    result's columns (names, order, types); a composed statement also runs embedded, as its callers
    embed it. Returns the rows of the plain run."""
    statement = BY_NAME[name]
    assert set(params or {}) == {p.name for p in statement.params}, "the test passes what the callers pass"
    assert set(identifiers) | {"shop"} == set(statement.identifier_names)
    expected = [(c.name, c.type) for c in statement.returns] if statement.returns is not None else None
    text = query(f"shop/{name}", **identifiers)
    if statement.composed:
        embedded = conn.execute(sql.SQL("SELECT * FROM (") + text + sql.SQL(") AS embedded"), params)
        assert column_types(conn, embedded) == expected, f"{name}, embedded"
    cur = conn.execute(text, params)
    if expected is None:
        assert cur.description is None, f"{name} must return no rows"
        return []
    assert column_types(conn, cur) == expected, name
    return cur.fetchall()


def by_sku(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    skus = [row[0] for row in rows]
    assert len(skus) == len(set(skus)), f"one row per SKU: {skus}"
    return {row[0]: tuple(row[1:]) for row in rows}


def demand_params(shop: Shop, **overrides: Any) -> dict[str, Any]:
    params = {"include_orders": True, "include_carts": True, "unsent_cutoff_seconds": 24 * 3600.0,
              "cart_cutoff_seconds": 3600.0, "unsent_statuses": UNSENT, "watermark": shop.watermark,
              "watermark_source": "wms"}
    return params | overrides


def refusal(shop: Shop, lines: list[tuple[str, int]], lock_timeout_ms: int = 0) -> psycopg.Error | None:
    """The checkout's refusal of `lines` (None: the order went through, and was rolled back)."""
    with connect(shop.dsn) as conn:
        if lock_timeout_ms:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
        try:
            shop.place_order(lines, conn)
        except psycopg.Error as exc:
            return exc
        finally:
            conn.rollback()
    return None


# ---------------------------------------------------------------- reads


def test_select_catalog_skus(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_catalog_skus")
    assert by_sku(rows) == {"SKU-A": (True,), "SKU-B": (True,), "SKU-C": (False,), "SKU-D": (True,)}


def test_select_enabled_skus(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_enabled_skus")
    assert sorted(by_sku(rows)) == ["SKU-A", "SKU-B", "SKU-D"]


def test_select_current_stock(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_current_stock")
    assert by_sku(rows) == {"SKU-A": (10, 5), "SKU-B": (3, 7), "SKU-C": (0, 0)}


def test_select_sellable_stock(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_sellable_stock")
    assert by_sku(rows) == {"SKU-A": (True, 10, 5), "SKU-B": (True, 3, 7), "SKU-C": (False, 0, 0),
                            "SKU-D": (True, None, None)}


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, {"SKU-A": (3, 1), "SKU-B": (3, 1)}),
    ({"include_carts": False}, {"SKU-A": (3, 0), "SKU-B": (3, 0)}),
    ({"include_orders": False}, {"SKU-A": (0, 1), "SKU-B": (0, 1)}),
    ({"include_orders": False, "include_carts": False}, {}),
    ({"unsent_statuses": ["placed"]}, {"SKU-A": (2, 1), "SKU-B": (1, 1)}),
    ({"watermark": "now"}, {"SKU-A": (3, 1), "SKU-B": (2, 1)}),  # order 3 was acknowledged by now
    ({"unsent_cutoff_seconds": 72 * 3600.0, "cart_cutoff_seconds": 72 * 3600.0},
     {"SKU-A": (8, 4), "SKU-B": (3, 1)}),
], ids=["orders-and-carts", "orders", "carts", "none", "statuses", "late-watermark", "long-cutoffs"])
def test_select_in_window_demand(shop: Shop, overrides: dict[str, Any], expected: dict[str, tuple[int, int]]) -> None:
    if overrides.get("watermark") == "now":
        overrides = overrides | {"watermark": datetime.now(UTC)}
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_in_window_demand", demand_params(shop, **overrides))
    assert {sku: q for sku, q in by_sku(rows).items() if q != (0, 0)} == expected


# ---------------------------------------------------------------- stock writes and locks


def test_lock_stock_holds_checkout_back_and_lets_reads_go_on(shop: Shop) -> None:
    with connect(shop.dsn) as holder:
        run(holder, "lock_stock")
        error = refusal(shop, [("SKU-A", 1)], lock_timeout_ms=300)
        assert isinstance(error, psycopg.errors.LockNotAvailable), error
        with connect(shop.dsn) as reader:
            reader.execute("SET lock_timeout = '300ms'")
            assert by_sku(run(reader, "select_current_stock"))["SKU-A"] == (10, 5)
        holder.commit()
    assert refusal(shop, [("SKU-A", 1)]) is None


def test_lock_stock_waits_for_an_in_flight_checkout(shop: Shop) -> None:
    """An order that already took its row locks finishes before the apply counts the orders."""
    with connect(shop.dsn) as shopper:
        shop.place_order([("SKU-B", 1)], shopper)  # not committed yet
        with connect(shop.dsn) as apply, pytest.raises(psycopg.errors.LockNotAvailable):
            apply.execute("SET lock_timeout = '300ms'")
            run(apply, "lock_stock")
        shopper.commit()


def test_update_stock_writes_only_what_moves_and_never_goes_back(shop: Shop) -> None:
    writes = sql.Identifier("contract_writes")
    with connect(shop.dsn) as conn:
        conn.execute(query("stocksync/create_writes", writes=writes))
        insert(conn, writes, "sku new_qty wms_seq", [
            ("SKU-A", 8, 6),  # newer sequence: written
            ("SKU-B", 1, 6),  # older than the stored 7: left alone
            ("SKU-C", 2, 0),  # same sequence, new figure: written (a re-run rewrites an equal sequence)
            ("SKU-D", 4, 3),  # on sale without a stock row: the row is created
        ])
        written = run(conn, "update_stock", writes=writes)
        assert sorted(sku for (sku,) in written) == ["SKU-A", "SKU-C", "SKU-D"]
        conn.commit()
        assert by_sku(run(conn, "select_current_stock")) == {
            "SKU-A": (8, 6), "SKU-B": (3, 7), "SKU-C": (2, 0), "SKU-D": (4, 3)}
        conn.execute(query("stocksync/create_writes", writes=writes))
        insert(conn, writes, "sku new_qty wms_seq", [("SKU-A", 8, 6), ("SKU-C", 2, 0)])  # nothing moves
        assert run(conn, "update_stock", writes=writes) == []
        conn.commit()


def test_lock_stock_row_locks_one_sku_as_checkout_does(shop: Shop) -> None:
    with connect(shop.dsn) as holder:
        assert run(holder, "lock_stock_row", {"sku": "SKU-A"}) == [(10, 5)]
        error = refusal(shop, [("SKU-A", 1)], lock_timeout_ms=300)
        assert isinstance(error, psycopg.errors.LockNotAvailable), error
        assert refusal(shop, [("SKU-B", 1)], lock_timeout_ms=300) is None, "only that SKU's row"
        assert run(holder, "lock_stock_row", {"sku": "SKU-D"}) == []  # no stock row
        assert run(holder, "lock_stock_row", {"sku": "SKU-UNKNOWN"}) == []
        holder.commit()


def test_update_stock_live_writes_only_a_strictly_newer_sequence(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        assert run(conn, "update_stock_live", {"sku": "SKU-A", "new_qty": 7, "wms_seq": 5}) == []
        assert run(conn, "update_stock_live", {"sku": "SKU-A", "new_qty": 7, "wms_seq": 4}) == []
        assert run(conn, "update_stock_live", {"sku": "SKU-A", "new_qty": 7, "wms_seq": 6}) == [(7, 6)]
        conn.commit()
        assert by_sku(run(conn, "select_current_stock"))["SKU-A"] == (7, 6)


# ---------------------------------------------------------------- the checkout freeze


def set_freeze(conn: psycopg.Connection, set_by: str, ttl: float = 600.0, reason: str = "contract test",
               message: str = "Back at {expected_end}.") -> tuple[Any, ...]:
    rows = run(conn, "insert_checkout_freeze", {"reason": reason, "message": message,
                                                "placeholder": freeze.EXPECTED_END, "set_by": set_by,
                                                "ttl_seconds": ttl})
    conn.commit()
    assert len(rows) == 1
    return rows[0]


def minute_up(moment: datetime) -> datetime:
    """`moment` in UTC rounded up to the next whole minute (unchanged when already whole): the
    shopper is never promised an earlier end than the freeze's."""
    utc = moment.astimezone(UTC)
    whole = utc.replace(second=0, microsecond=0)
    return whole if whole == utc else whole + timedelta(minutes=1)


def test_insert_checkout_freeze_closes_checkout_with_its_expected_end(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        freeze_id, set_at, expires_at, message = set_freeze(conn, "run-1")
        assert abs((expires_at - set_at).total_seconds() - 600) < 1
        assert message == f"Back at {minute_up(expires_at):%H:%M} UTC."
        assert [row[0] for row in run(conn, "select_active_freeze", {"set_by": None})] == [freeze_id]
    error = refusal(shop, [("SKU-A", 1)])
    assert error is not None and error.sqlstate == "SF001" and message in str(error)


def test_update_checkout_freeze_releases_only_the_given_holder(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        mine = {set_freeze(conn, "run-1")[0], set_freeze(conn, "run-1")[0]}
        maintenance = set_freeze(conn, "ops: maintenance")[0]
        released = run(conn, "update_checkout_freeze", {"set_by": "run-1"})
        conn.commit()
        assert {row[0] for row in released} == mine
        assert run(conn, "update_checkout_freeze", {"set_by": "run-1"}) == []  # released once
        assert [row[0] for row in run(conn, "select_active_freeze", {"set_by": None})] == [maintenance]
        assert getattr(refusal(shop, [("SKU-A", 1)]), "sqlstate", None) == "SF001", "maintenance still holds"
        assert [row[0] for row in run(conn, "update_checkout_freeze", {"set_by": "ops: maintenance"})] == [maintenance]
        conn.commit()
    assert refusal(shop, [("SKU-A", 1)]) is None


def test_select_checkout_freeze_sums_how_long_a_holder_closed_checkout(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        assert run(conn, "select_checkout_freeze", {"set_by": "run-2"}) == [(0.0, 0)]
        set_freeze(conn, "run-2", ttl=0.1)  # expires on its own: counts 0.1 s
        set_freeze(conn, "run-2")
        set_freeze(conn, "someone else")
        time.sleep(0.3)
        run(conn, "update_checkout_freeze", {"set_by": "run-2"})
        conn.commit()
        [(seconds, count)] = run(conn, "select_checkout_freeze", {"set_by": "run-2"})
        assert count == 2
        assert 0.4 <= seconds < 10, seconds


def test_select_active_freeze_lists_unreleased_unexpired_oldest_first(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        first = set_freeze(conn, "run-1")[0]
        set_freeze(conn, "run-1", ttl=0.05)  # expires
        released = set_freeze(conn, "run-3")[0]
        second = set_freeze(conn, "ops")[0]
        assert run(conn, "update_checkout_freeze", {"set_by": "run-3"}) == [(released,)]
        conn.commit()
        time.sleep(0.1)
        rows = run(conn, "select_active_freeze", {"set_by": None})
        assert [row[0] for row in rows] == [first, second]
        assert [(row[1], row[3]) for row in rows] == [("contract test", "run-1"), ("contract test", "ops")]
        assert [row[0] for row in run(conn, "select_active_freeze", {"set_by": "run-1"})] == [first]
        assert run(conn, "select_active_freeze", {"set_by": "nobody"}) == []


# ---------------------------------------------------------------- the order push


def test_select_unacknowledged_orders(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_unacknowledged_orders", {"statuses": UNSENT})
    assert sorted(row[0] for row in rows) == [1, 5, 6]


def test_select_cancelled_orders(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        assert [row[0] for row in run(conn, "select_cancelled_orders", {"cancelled_statuses": ["cancelled"]})] == [4]
        assert run(conn, "select_cancelled_orders", {"cancelled_statuses": ["refunded"]}) == []


def test_select_order_lines(shop: Shop) -> None:
    with connect(shop.dsn) as conn:
        rows = run(conn, "select_order_lines", {"order_ids": [6, 1]})
    assert rows == [(1, "SKU-A", 2), (6, "SKU-A", 1), (6, "SKU-B", 2)]


def test_update_order_acknowledged_keeps_a_first_time_and_ends_the_subtraction(shop: Shop) -> None:
    """An order acknowledged before the watermark is in the WMS's figure: no longer subtracted."""
    early = shop.watermark - timedelta(minutes=1)
    with connect(shop.dsn) as conn:
        acknowledged = run(conn, "update_order_acknowledged", {"order_ids": [1, 2], "acknowledged_at": [early, early]})
        conn.commit()
        assert acknowledged == [(1,)], "order 2 keeps the time it had"
        assert sorted(row[0] for row in run(conn, "select_unacknowledged_orders", {"statuses": UNSENT})) == [5, 6]
        demand = by_sku(run(conn, "select_in_window_demand", demand_params(shop)))
        assert demand["SKU-A"] == (1, 1)


def test_lock_stock_for_order_push_holds_the_apply_back_not_checkout(shop: Shop) -> None:
    with connect(shop.dsn) as push:
        run(push, "lock_stock_for_order_push")
        assert refusal(shop, [("SKU-A", 1)], lock_timeout_ms=300) is None
        with connect(shop.dsn) as apply, pytest.raises(psycopg.errors.LockNotAvailable):
            apply.execute("SET lock_timeout = '300ms'")
            run(apply, "lock_stock")
        push.commit()


# ---------------------------------------------------------------- the seam itself


def test_the_shop_schema_name_is_filled_in(reference_adapter: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SHOP_SCHEMA_ENV, RENAMED_SCHEMA)
    assert '"Contract ""shop"" renamed".products' in query("shop/select_catalog_skus").as_string(None)
    assert '"elsewhere".products' in query("shop/select_catalog_skus", shop="elsewhere").as_string(None)
    monkeypatch.delenv(SHOP_SCHEMA_ENV)
    assert '"shop".products' in query("shop/select_catalog_skus").as_string(None)


def copy_adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "my-shop-adapter"
    shutil.copytree(REFERENCE_SHOP_ADAPTER, folder)
    return folder


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative-to-project"])
def test_a_copied_adapter_folder_is_honoured_by_unchanged_callers(
        configured_shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: bool) -> None:
    """A deployment copies the folder, edits a statement, sets the variable: freeze.py, which asks
    for `shop/select_active_freeze` as always, runs the edited one."""
    folder = copy_adapter(tmp_path)
    (folder / "select_active_freeze.sql").write_text(
        "-- This deployment hides maintenance freezes from stocksync.\n"
        "SELECT freeze_id, reason, shopper_message, set_by, set_at, expires_at\n"
        "  FROM {shop}.checkout_freezes\n"
        " WHERE released_at IS NULL AND expires_at > clock_timestamp() AND set_by <> 'ops'\n"
        "   AND (%(set_by)s::text IS NULL OR set_by = %(set_by)s::text)\n"
        " ORDER BY set_at\n")
    with connect(configured_shop.dsn) as conn:
        run_freeze = set_freeze(conn, "run-1")[0]
        set_freeze(conn, "ops")
        assert len(freeze.active_freezes(conn)) == 2
        monkeypatch.setenv(SHOP_ADAPTER_DIR_ENV, os.path.relpath(folder, PROJECT_ROOT) if relative else str(folder))
        assert shop_adapter_dir().resolve() == folder.resolve()
        assert [row[0] for row in freeze.active_freezes(conn)] == [run_freeze]


def test_a_statement_missing_from_the_folder_is_named(
        reference_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = copy_adapter(tmp_path)
    (folder / "lock_stock.sql").unlink()
    monkeypatch.setenv(SHOP_ADAPTER_DIR_ENV, str(folder))
    with pytest.raises(FileNotFoundError, match=f"{SHOP_ADAPTER_DIR_ENV}.*lock_stock.sql"):
        query("shop/lock_stock")


def test_a_statement_that_writes_the_schema_out_is_caught(
        reference_shops: str, reference_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renamed-schema runs can fail: a copy whose select_current_stock names `shop` literally
    reads the emptied default schema instead of the renamed one."""
    folder = copy_adapter(tmp_path)
    path = folder / "select_current_stock.sql"
    path.write_text(path.read_text().replace("{shop}", shop_schema()))
    seeded = seeded_shop(reference_shops, RENAMED_SCHEMA)
    monkeypatch.setenv(SHOP_SCHEMA_ENV, RENAMED_SCHEMA)
    with connect(seeded.dsn) as conn:
        assert by_sku(run(conn, "select_current_stock")) == {"SKU-A": (10, 5), "SKU-B": (3, 7), "SKU-C": (0, 0)}
        monkeypatch.setenv(SHOP_ADAPTER_DIR_ENV, str(folder))
        assert run(conn, "select_current_stock") == []


def test_a_contract_fixture_builds_the_adapters_own_tables(
        reference_shops: str, reference_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An adapter for other tables brings contract_fixture.sql, which the seeding runs after it
    filled the reference shop: here a stock table with other names and a numeric quantity."""
    folder = copy_adapter(tmp_path)
    (folder / f"{CONTRACT_FIXTURE}.sql").write_text(
        "-- Test only: this shop keeps stock in contract_inventory (item_code, on_hand numeric).\n"
        "DROP TABLE IF EXISTS {shop}.contract_inventory;\n"
        "CREATE TABLE {shop}.contract_inventory AS\n"
        "SELECT sku AS item_code, qty::numeric(12, 4) + 0.5 AS on_hand, wms_seq AS seq FROM {shop}.stock;\n")
    (folder / "select_current_stock.sql").write_text(
        "SELECT item_code::text AS sku, floor(on_hand)::integer AS qty, seq::bigint AS wms_seq\n"
        "  FROM {shop}.contract_inventory\n")
    monkeypatch.setenv(SHOP_ADAPTER_DIR_ENV, str(folder))
    seeded = seeded_shop(reference_shops, shop_schema())
    with connect(seeded.dsn) as conn:
        try:
            assert by_sku(run(conn, "select_current_stock")) == {"SKU-A": (10, 5), "SKU-B": (3, 7), "SKU-C": (0, 0)}
        finally:
            conn.rollback()
            conn.execute(sql.SQL("DROP TABLE {}").format(seeded.t("contract_inventory")))
            conn.commit()


@pytest.mark.slow
def test_the_guides_custom_shop_example_keeps_the_contract() -> None:
    """docs/examples/custom-shop-adapter (the guide's custom-schema example: other table and column
    names, numeric quantities, the WMS sequence in the adapter's own side table) passes this whole
    suite, run the way the guide tells a deployment to run it."""
    env = os.environ | {SHOP_ADAPTER_DIR_ENV: "docs/examples/custom-shop-adapter", SHOP_SCHEMA_ENV: "store",
                        "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-m", "not slow"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
