"""The database roles of include/sql/roles/ on the real PostgreSQL: each component logs in as its
own role and may do exactly what it needs.

- stocksync_availability answers a lookup through the real availability service, and PostgreSQL
  refuses it every write (INSERT, UPDATE, DELETE, TRUNCATE) on the shop and on stocksync's runs;
- stocksync_sync runs a whole nightly (`dag.test()`, its shop statements and its staging tables in
  stocksync's schema) with its connection pointing at that role, and may not touch what the
  nightly never touches (products, order lines, its own login's privileges).
The expected privileges are PostgreSQL's answers (SQLSTATE 42501 insufficient_privilege), not
anything the code under test reports about itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from devstack.availability_process import AvailabilityProcess, new_secret
from devstack.local_stack import postgres_connection_json
from include.stocksync.store.db import connect
from include.stocksync.store.roles import AVAILABILITY_ROLE, SYNC_ROLE, apply_roles
from include.stocksync.sync.pipeline import get_run
from tests.conftest import TEST_TOKEN, SplitDatabases, shop_in_line_with_wms, stock_fingerprint
from tests.integration import test_nightly_sync as nightly
from tests.integration.test_availability import ask, available


def as_role(dsn: str, role: str, password: str) -> str:
    """`dsn` with another login: the same server and database."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"))


@dataclass(frozen=True)
class Logins:
    """Each role's DSN in the shop's database and in stocksync's own."""

    shop: dict[str, str]
    stocksync: dict[str, str]


@pytest.fixture
def roles(clean_split: SplitDatabases) -> Logins:
    """The roles applied by the administrator (the test cluster's superuser) in both databases."""
    passwords = {role: secrets.token_urlsafe(18) for role in (SYNC_ROLE, AVAILABILITY_ROLE)}
    apply_roles(clean_split.shop, passwords, stocksync_admin_dsn=clean_split.stocksync)
    # idempotent: a second run (after an upgrade) changes nothing
    apply_roles(clean_split.shop, passwords, stocksync_admin_dsn=clean_split.stocksync)
    return Logins(shop={role: as_role(clean_split.shop, role, password) for role, password in passwords.items()},
                  stocksync={role: as_role(clean_split.stocksync, role, password)
                             for role, password in passwords.items()})


seeded = nightly.seeded  # the nightly tests' demo shop (40 SKUs, orders, drift)


SHOP_WRITES = [
    "INSERT INTO shop.stock (sku, qty) VALUES ('SKU-9999999', 1)",
    "UPDATE shop.stock SET qty = qty + 1",
    "DELETE FROM shop.stock",
    "TRUNCATE shop.stock",
    "UPDATE shop.products SET enabled = false",
    "INSERT INTO shop.products (sku, name) VALUES ('X-1', 'x')",
    "DELETE FROM shop.checkout_freezes",
    "INSERT INTO shop.checkout_freezes (reason, shopper_message, set_by, expires_at) "
    "VALUES ('x', 'x', 'x', now() + interval '1 hour')",
    "UPDATE shop.checkout_freezes SET released_at = now()",
    "SELECT qty FROM shop.stock FOR UPDATE",
    "SELECT * FROM shop.orders",
    "CREATE TABLE shop.mine (x int)",
    "CREATE SCHEMA mine",
]
STOCKSYNC_WRITES = [
    "INSERT INTO stocksync.sync_runs (run_id, dag_id, status) VALUES ('x', 'x', 'applied')",
    "DELETE FROM stocksync.sku_map",
    "CREATE TABLE stocksync.mine (x int)",
    "CREATE SCHEMA mine",
]


def refused(dsn: str, statement: str) -> bool:
    with psycopg.connect(dsn) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
        return False


def test_availability_role_answers_a_lookup_but_cannot_write(clean_shop: str, stocksync_dsn: str, roles: Logins,
                                                            wms: Any) -> None:
    shop_in_line_with_wms(clean_shop, wms, skus=5, seed=11, drift_share=0.0)
    with connect(clean_shop) as conn:
        conn.execute("UPDATE shop.stock SET qty = 7 WHERE sku = 'SKU-0000001'")
        conn.commit()
    reader, store_reader = roles.shop[AVAILABILITY_ROLE], roles.stocksync[AVAILABILITY_ROLE]
    before = stock_fingerprint(clean_shop)

    svc = AvailabilityProcess({"SHOP_DSN": reader, "STOCKSYNC_DSN": store_reader, "SECRET": new_secret(),
                               "RATE_LIMIT_PER_SECOND": "0", "STATS_FLUSH_SECONDS": "0.3"})
    with svc:
        response = ask(svc, {".code": "SKU-0000001", ".quantity": "1"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Inventory-Source"] == "shop"
    assert available(response) == 7
    with connect(stocksync_dsn) as conn:  # its counters reached stocksync.availability_stats as that role
        assert conn.execute("SELECT count(*) FROM stocksync.availability_stats").fetchone()[0] >= 1

    allowed = [statement for statement in SHOP_WRITES if not refused(reader, statement)]
    allowed += [statement for statement in STOCKSYNC_WRITES if not refused(store_reader, statement)]
    assert allowed == []
    assert stock_fingerprint(clean_shop) == before
    with connect(stocksync_dsn) as conn:  # the SKU map as the owner sees it (other tests may have filled it)
        mapped = conn.execute("SELECT count(*) FROM stocksync.sku_map").fetchone()[0]
    with psycopg.connect(reader) as conn:  # and it reads what a lookup needs, directly too
        assert conn.execute("SELECT count(*) FROM shop.products p JOIN shop.stock s USING (sku)").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM shop.checkout_freezes").fetchone()[0] == 0
    with psycopg.connect(store_reader) as conn:
        assert conn.execute("SELECT count(*) FROM stocksync.sku_map").fetchone()[0] == mapped


@pytest.mark.slow
def test_sync_role_runs_a_nightly(dagbag: Any, seeded: dict[str, Any], roles: Logins, wms: Any,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.utils.state import DagRunState

    admin, store_admin = seeded["dsn"], seeded["store"]
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_SHOP", postgres_connection_json(roles.shop[SYNC_ROLE]))
    monkeypatch.setenv("AIRFLOW_CONN_STOCKSYNC_DB", postgres_connection_json(roles.stocksync[SYNC_ROLE]))
    wms_items = wms.admin.items()

    dag_run = nightly.run_nightly(dagbag)

    assert dag_run.state == DagRunState.SUCCESS
    run = get_run(store_admin, dag_run.run_id)
    assert run["status"] == "applied" and run["changed"] > 0
    expected = nightly.expected_stock(admin, wms_items, run["orders_counted_until"])
    assert {sku: qty for sku, qty, _, _ in stock_fingerprint(admin)} == {s: q for s, (q, _) in expected.items()}
    with connect(store_admin) as conn:  # it did run as that role: its staging tables are its own
        owners = {row[0] for row in conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'stocksync' AND c.relkind = 'r'")}
    assert owners == {SYNC_ROLE}
    # what the nightly never does stays refused
    for statement in ("UPDATE shop.products SET enabled = false", "DELETE FROM shop.order_lines",
                      "DELETE FROM shop.stock", "UPDATE shop.orders SET status = 'x'", "CREATE TABLE shop.mine (x int)",
                      f"ALTER ROLE {SYNC_ROLE} SUPERUSER", "CREATE SCHEMA stocksync"):
        assert refused(roles.shop[SYNC_ROLE], statement), statement


def test_live_availability_role_writes_back_across_two_databases(clean_split: SplitDatabases, wms: Any) -> None:
    """The live-mode grants applied to the shop's database and to stocksync's, apart: the service,
    logged in as stocksync_availability to both, writes the WMS's figure into the shop and records
    it in stocksync's database; it still may not write anything else in either."""
    passwords = {role: secrets.token_urlsafe(18) for role in (SYNC_ROLE, AVAILABILITY_ROLE)}
    apply_roles(clean_split.shop, passwords, live_availability=True, stocksync_admin_dsn=clean_split.stocksync)
    shop_reader = as_role(clean_split.shop, AVAILABILITY_ROLE, passwords[AVAILABILITY_ROLE])
    store_writer = as_role(clean_split.stocksync, AVAILABILITY_ROLE, passwords[AVAILABILITY_ROLE])
    shop_in_line_with_wms(clean_split.shop, wms, skus=5, seed=11, drift_share=0.0)
    name = "SKU-0000002"
    item = wms.admin.items([name])[0]
    with connect(clean_split.shop) as conn:  # drifted, at seq 0: the WMS's state is newer
        conn.execute("UPDATE shop.stock SET qty = %s, wms_seq = 0 WHERE sku = %s", (item["available"] + 3, name))
        conn.commit()

    svc = AvailabilityProcess({"SHOP_DSN": shop_reader, "STOCKSYNC_DSN": store_writer, "SECRET": new_secret(),
                               "RATE_LIMIT_PER_SECOND": "0", "LIVE_MODE": "true", "WMS_URL": wms.url,
                               "WMS_TOKEN": TEST_TOKEN, "WMS_BUDGET_MS": "2000", "DB_BUDGET_MS": "2000"})
    with svc:
        response = ask(svc, {".code": name})
    assert response.headers["X-Inventory-Live"] == "written", svc.log()[-2000:]
    assert available(response) == item["available"]  # no order in the shop: nothing uncounted
    with connect(clean_split.shop) as conn:
        assert conn.execute("SELECT qty, wms_seq FROM shop.stock WHERE sku = %s", (name,)).fetchone() == (
            item["available"], item["seq"])
    with connect(clean_split.stocksync) as conn:
        assert conn.execute("SELECT new_qty, outcome FROM stocksync.sku_audit WHERE sku = %s",
                            (name,)).fetchall() == [(item["available"], "changed")]
    for dsn, statement in ((shop_reader, "UPDATE shop.products SET enabled = false"),
                           (shop_reader, "DELETE FROM shop.stock"),
                           (shop_reader, "UPDATE shop.orders SET status = 'x'"),
                           (store_writer, "DELETE FROM stocksync.sku_map"),
                           (store_writer, "DELETE FROM stocksync.sku_audit"),
                           (store_writer, "CREATE TABLE stocksync.mine (x int)")):
        assert refused(dsn, statement), statement
