"""Demo data: a catalog, shop stock out of line with the WMS, and orders around the watermark.

Deterministic for a given (skus, seed). What it creates:

- the WMS reset to `skus` SKUs with `seed`;
- the shop catalog with the same SKUs; shop stock = WMS available, except for about a
  fifth of the SKUs where it drifted (damage, loss, sales elsewhere) and a few that are
  out of stock in the shop only;
- orders through the shop's real checkout (`place_order`):
  * *acknowledged*: pushed to the WMS (`POST /v1/orders`, idempotency key
    `shop-order-<id>`, as orders_to_wms sends it) and marked acknowledged at the receipt's
    `received_at` (the WMS's clock), so the WMS snapshot counts them;
  * *unsent*: never pushed: the sync must subtract them;
  * *old unsent*: older than the unsent-order cutoff (backdated two days): not subtracted;
  * *cancelled*: status outside the unsent statuses: not subtracted;
- a few carts, recent and stale (only used in `unsent_orders_and_carts` mode).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import psycopg
import requests

from include.stocksync.store.db import connect


@dataclass(frozen=True)
class SeedResult:
    skus: int
    drifted: int
    orders_acknowledged: int
    orders_unsent: int
    orders_old_unsent: int
    orders_cancelled: int
    carts: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class WmsAdmin:
    """The WMS service's admin and order API (demo/test service only)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}{path}", timeout=60, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"WMS {method} {path} -> HTTP {response.status_code}: {response.text[:300]}")
        return response.json()

    def reset(self, skus: int, seed: int) -> Any:
        return self._call("POST", "/_admin/reset", json={"skus": skus, "seed": seed})

    def items(self, skus: list[str] | None = None) -> list[dict[str, Any]]:
        params = {"skus": ",".join(skus)} if skus else None
        body = self._call("GET", "/_admin/items", params=params)
        return body["items"] if isinstance(body, dict) else body

    def set_items(self, items: list[dict[str, Any]]) -> Any:
        return self._call("POST", "/_admin/set", json={"items": items})

    def faults(self, **faults: Any) -> Any:
        return self._call("POST", "/_admin/faults", json=faults)

    def clear_faults(self) -> Any:
        return self._call("DELETE", "/_admin/faults")

    def push_order(self, order_ref: str, lines: list[dict[str, Any]]) -> requests.Response:
        return self.session.post(f"{self.base_url}/v1/orders", json={"order_ref": order_ref, "lines": lines},
                                 headers={"Idempotency-Key": order_ref}, timeout=30)

    def health(self) -> dict[str, Any]:
        return requests.get(f"{self.base_url}/health", timeout=5).json()


def reset_shop(conn: psycopg.Connection) -> None:
    """Empty the demo shop and, when this database holds it too (the single-database layout),
    stocksync's history (demo databases only; a shop in a database of its own has no stocksync
    schema: `reset_history` empties stocksync's database)."""
    conn.execute("TRUNCATE shop.order_lines, shop.orders, shop.cart_lines, shop.carts, shop.checkout_freezes, "
                 "shop.stock, shop.products RESTART IDENTITY CASCADE")
    row = conn.execute("SELECT to_regclass('stocksync.sync_runs') IS NOT NULL").fetchone()
    if row and row[0]:
        reset_history(conn)


def reset_history(conn: psycopg.Connection) -> None:
    """Empty stocksync's history (demo databases only)."""
    conn.execute("TRUNCATE stocksync.sku_audit, stocksync.dq_results, stocksync.applied_snapshots, "
                 "stocksync.sync_runs, "
                 # the order push's records are keyed by shop order ids, which restart with the shop
                 "stocksync.order_pushes, stocksync.order_dead_letters, stocksync.order_push_runs "
                 "RESTART IDENTITY CASCADE")


def load_catalog(conn: psycopg.Connection, wms_items: list[dict[str, Any]], rng: random.Random,
                 drift_share: float = 0.2) -> int:
    """Catalog and shop stock from the WMS figures, with drift on about `drift_share` of SKUs."""
    drifted = 0
    with conn.cursor().copy("COPY shop.products (sku, name, enabled) FROM STDIN") as copy:
        for item in wms_items:
            copy.write_row((item["sku"], f"Demo product {item['sku']}", True))
    with conn.cursor().copy("COPY shop.stock (sku, qty, wms_seq) FROM STDIN") as copy:
        for item in wms_items:
            qty = int(item["available"])
            if rng.random() < drift_share:
                drifted += 1
                qty = 0 if rng.random() < 0.1 else max(0, qty + rng.randint(-20, 20))
            copy.write_row((item["sku"], qty, 0))
    return drifted


def place_order(conn: psycopg.Connection, lines: list[tuple[str, int]], customer: str) -> int | None:
    """Checkout through the shop's own function; None when the shop refuses."""
    try:
        row = conn.execute("SELECT shop.place_order(%(skus)s, %(qtys)s, %(customer)s)",
                           {"skus": [s for s, _ in lines], "qtys": [q for _, q in lines],
                            "customer": customer}).fetchone()
        conn.commit()
        return int(row[0]) if row else None
    except psycopg.errors.RaiseException:
        conn.rollback()
        return None
    except psycopg.Error as exc:
        conn.rollback()
        if exc.sqlstate and exc.sqlstate.startswith("SF"):
            return None
        raise


def seed_demo(dsn: str, wms: WmsAdmin, *, skus: int, seed: int, orders: int | None = None,
              stocksync_dsn: str | None = None) -> SeedResult:
    """Reset the WMS and the shop at `dsn` to a deterministic demo scenario (see the module
    docstring); with `stocksync_dsn`, stocksync's own database, its history is emptied too (the
    order push's records are keyed by shop order ids, which restart with the shop)."""
    rng = random.Random(seed)
    wms.reset(skus, seed)
    wms_items = wms.items()
    orders = orders if orders is not None else max(8, skus // 25)
    counts = {"acknowledged": 0, "unsent": 0, "old_unsent": 0, "cancelled": 0}
    if stocksync_dsn is not None and stocksync_dsn != dsn:
        with connect(stocksync_dsn) as conn:
            reset_history(conn)
            conn.commit()
    with connect(dsn) as conn:
        reset_shop(conn)
        drifted = load_catalog(conn, wms_items, rng)
        conn.commit()
        sku_names = [item["sku"] for item in wms_items]
        for n in range(orders):
            picked = rng.sample(sku_names, k=min(len(sku_names), rng.randint(1, 3)))
            lines = [(sku, rng.randint(1, 3)) for sku in picked]
            order_id = place_order(conn, lines, f"demo-customer-{n}")
            if order_id is None:
                continue
            kind = rng.choices(["acknowledged", "unsent", "old_unsent", "cancelled"], weights=[5, 3, 1, 1])[0]
            if kind == "acknowledged":
                response = wms.push_order(f"shop-order-{order_id}", [{"sku": s, "qty": q} for s, q in lines])
                if response.status_code in (200, 201):
                    # the WMS's own receipt time, as orders_to_wms records it (same key format)
                    conn.execute("UPDATE shop.orders SET wms_acknowledged_at = %(at)s, status = 'paid' "
                                 "WHERE order_id = %(id)s", {"id": order_id, "at": response.json()["received_at"]})
                else:  # the WMS had too little: it stays unsent, which the sync subtracts
                    kind = "unsent"
            elif kind == "old_unsent":
                conn.execute("UPDATE shop.orders SET created_at = now() - interval '2 days' WHERE order_id = %(id)s",
                             {"id": order_id})
            elif kind == "cancelled":
                conn.execute("UPDATE shop.orders SET status = 'cancelled' WHERE order_id = %(id)s", {"id": order_id})
            conn.commit()
            counts[kind] += 1
        carts = 0
        for n in range(max(2, orders // 4)):
            stale = n % 3 == 0
            row = conn.execute("INSERT INTO shop.carts (updated_at) VALUES (now() - %(age)s * interval '1 hour') "
                               "RETURNING cart_id", {"age": 48 if stale else 1}).fetchone()
            assert row is not None
            sku = rng.choice(sku_names)
            conn.execute("INSERT INTO shop.cart_lines (cart_id, sku, qty) VALUES (%(c)s, %(s)s, %(q)s)",
                         {"c": row[0], "s": sku, "q": rng.randint(1, 2)})
            carts += 1
        conn.commit()
    return SeedResult(skus, drifted, counts["acknowledged"], counts["unsent"], counts["old_unsent"],
                      counts["cancelled"], carts)
