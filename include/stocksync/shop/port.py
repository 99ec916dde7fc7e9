"""The shop port: everything stocksync asks of a shop, as one small typed interface.

stocksync keeps its own bookkeeping (runs, staging, plan, audit, alerts, drift, file drops) in its
own PostgreSQL database; the shop is another database, perhaps another engine (the reference
PostgreSQL shop, Magento 2 or PrestaShop on MariaDB). stocksync reaches the shop only through an
object that implements `ShopPort`, one per shop platform (`include/stocksync/shop/registry.py`
picks it from the `shop_platform` setting). Nothing in stocksync joins a shop table: what the plan
needs from the shop (catalog, current stock, in-window demand) is streamed into stocksync's staging
first, through a `StagingSink`.

Who computes what (docs/architecture.md, "The shop port"): the formula
`new = max(0, available - unsent - carts)` is applied once, by stocksync, on its own database. The
port returns the demand (`DemandRow`: unsent order units and cart units per SKU) and, during the
apply, returns it again *under the shop's lock* inside the shop's own transaction; stocksync
recomputes the SKUs whose demand moved and hands the port the final sellable figures
(`StockWrite`). The adapter turns a sellable figure into whatever its platform stores (Magento adds
back the reservations its checkout will subtract again for orders the WMS already counted;
PrestaShop writes `quantity`; the reference shop writes `stock.qty`) and guards each SKU's write by
the WMS sequence.

Transactions: each method below is one shop transaction that the adapter opens, commits (or rolls
back on error) and closes, except the two sessions (`apply_session`, `order_push_session`,
`live_session`), whose one transaction lasts for the `with` block: committed when the block ends
normally, rolled back when it raises. The caller never sees a shop connection.

Errors: an adapter raises `ShopUnavailable` for a transient failure (connection refused or lost,
lock timeout, serialization failure: the caller retries with backoff) and `ShopContractError` when
the shop answers outside this contract (a wrong column type, a missing table: permanent, fix the
adapter or its configuration).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from include.stocksync.domain.errors import PermanentError, TransientError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql


class ShopUnavailable(TransientError):
    """The shop could not be reached or the lock not taken in time: transient, retry with backoff."""


class ShopContractError(PermanentError):
    """The shop (or its adapter) answered outside the port's contract: permanent, never retried."""


# ---------------------------------------------------------------------------------------- rows

@dataclass(frozen=True)
class CatalogRow:
    """One product the shop knows. `enabled`: on sale (the catalog a full snapshot must cover)."""

    sku: str
    enabled: bool


@dataclass(frozen=True)
class StockRow:
    """The shop's sellable quantity of one SKU (units checkout may sell now, >= 0) and the last WMS
    sequence applied to it (0: never). A catalog SKU without a stock row has no `StockRow`: stocksync
    counts it as 0 with sequence -1, and `StockWrite` creates its row."""

    sku: str
    qty: int
    wms_seq: int


@dataclass(frozen=True)
class DemandRow:
    """Units the WMS had not counted when it took its snapshot: in uncounted orders and, when carts
    are switched on, in active carts. SKUs without demand may be left out."""

    sku: str
    unsent_qty: int
    cart_qty: int


@dataclass(frozen=True)
class DemandQuery:
    """What counts as demand (domain rule 1). An order counts when its status is in
    `unsent_statuses`, it was created within `unsent_cutoff_seconds`, and the WMS had not
    acknowledged it at or before `watermark` (never acknowledged counts); `include_orders` false
    counts none (adjustment mode `none`). A cart counts when `include_carts` and it was updated
    within `cart_cutoff_seconds`. `watermark_source` (`wms` | `request_time`) is informational."""

    include_orders: bool
    unsent_cutoff_seconds: float
    unsent_statuses: tuple[str, ...]
    watermark: datetime
    watermark_source: str
    include_carts: bool
    cart_cutoff_seconds: float

    def as_params(self) -> dict[str, Any]:
        """The bound parameters of the SQL adapters' demand statement."""
        return {"include_orders": self.include_orders, "unsent_cutoff_seconds": self.unsent_cutoff_seconds,
                "unsent_statuses": list(self.unsent_statuses), "watermark": self.watermark,
                "watermark_source": self.watermark_source, "include_carts": self.include_carts,
                "cart_cutoff_seconds": self.cart_cutoff_seconds}


@dataclass(frozen=True)
class StockWrite:
    """One SKU's final sellable figure (already `max(0, ...)`) and the WMS sequence it comes from."""

    sku: str
    new_qty: int
    wms_seq: int


@dataclass(frozen=True)
class Freeze:
    """A checkout freeze as set: id, when, when it lapses by itself, the message shoppers see."""

    freeze_id: int
    set_at: datetime
    expires_at: datetime
    shopper_message: str


class ActiveFreeze(NamedTuple):
    """A freeze that closes checkout right now (a tuple too: freeze_id, reason, shopper_message,
    set_by, set_at, expires_at)."""

    freeze_id: int
    reason: str
    shopper_message: str
    set_by: str
    set_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class OrderRef:
    order_id: int
    created_at: datetime


@dataclass(frozen=True)
class OrderLine:
    order_id: int
    sku: str
    qty: int


@dataclass(frozen=True)
class Sellable:
    """One catalog product as the shop's checkout sees it (availability service). `qty` and
    `wms_seq` are None when the product has no stock row (checkout refuses it)."""

    sku: str
    enabled: bool
    qty: int | None
    wms_seq: int | None


# --------------------------------------------------------------------------------- the sink

@runtime_checkable
class StagingSink(Protocol):
    """Where a bulk read goes: a COPY into one of stocksync's staging tables. psycopg's `Copy`
    (`cursor.copy("COPY t (cols) FROM STDIN")`) is one. An adapter calls `write_row` with a tuple
    in the column order of the method's row type, or, when its driver already produces PostgreSQL
    COPY text format (the reference adapter's `COPY ... TO STDOUT`), passes those bytes through
    with `write`, the fastest path (no Python object per row)."""

    def write_row(self, row: Sequence[Any]) -> None: ...

    def write(self, buffer: bytes | str) -> None: ...


# ------------------------------------------------------------------------------- sessions

class ApplySession(Protocol):
    """The shop inside the apply's one transaction, the stock locked against checkout
    (`ShopPort.apply_session`). Checkouts that take stock wait until the session ends; in-flight
    ones finished before the lock was granted. An adapter may instead lock, inside `write_stock`,
    only the rows it writes, provided it reads their demand again under that lock and takes what
    moved since `stream_demand` into the written figure (the MySQL adapters do: a night's write
    then holds only the rows that move, for the time of the write).

    `rows_locked_at` is when (`time.perf_counter()`) the session took its first lock on stock rows
    (None until then): from there to the commit is what checkout, a shipment or a back-office edit
    of those rows can wait on, reported beside the whole transaction's time."""

    rows_locked_at: float | None

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        """The in-window demand as it is under the lock (every order committed before the lock
        counts), into `sink` as `DemandRow` columns. Returns the rows written."""
        ...

    def read_stock(self, skus: Sequence[str]) -> list[StockRow]:
        """The locked stock of `skus` (only those that have a stock row)."""
        ...

    def write_stock(self, writes: Iterable[StockWrite]) -> list[str]:
        """One set-based, sequence-guarded write: each SKU gets `new_qty` and `wms_seq` only when
        its stored sequence is not newer (`wms_seq >= stored`) and the quantity or the sequence
        moves; a catalog SKU without stock gets its row; a stored sequence never goes down.
        Returns the SKUs actually written (what changed)."""
        ...


class OrderPushSession(Protocol):
    """One order-push batch's shop transaction (`ShopPort.order_push_session`). It holds the lock
    that makes an apply wait (checkout and reads go on) from before the batch is sent to the WMS
    until its acknowledgements commit, so an apply never counts an order the WMS already has as
    uncounted (it would be subtracted twice)."""

    def order_lines(self, order_ids: Sequence[int]) -> list[OrderLine]:
        """The lines of `order_ids`, one per (order, SKU), ordered by order then SKU."""
        ...

    def acknowledge(self, order_ids: Sequence[int], acknowledged_at: Sequence[datetime]) -> list[int]:
        """Record the WMS's receipt time of each order (same order as `order_ids`); an order
        already acknowledged keeps its first time. Returns the orders changed."""
        ...


class LiveSession(Protocol):
    """The availability service's live write-back of one SKU (`ShopPort.live_session`): the SKU's
    stock row is locked the way checkout locks it, so no order lands between the count of its
    uncounted orders and the write."""

    @property
    def current(self) -> StockRow | None:
        """The locked stock row; None: the SKU has no stock (nothing can be written)."""
        ...

    def demand(self, query: DemandQuery) -> DemandRow:
        """The SKU's in-window demand under the row lock (zeros when it has none)."""
        ...

    def write(self, new_qty: int, wms_seq: int) -> StockRow | None:
        """Write the figure only when the stored sequence is strictly older than `wms_seq`
        (equal means already applied). Returns the written row, or None when nothing was written."""
        ...


# ------------------------------------------------------------------------------------ port

@runtime_checkable
class ShopPort(Protocol):
    """One shop, as stocksync sees it. Implementations: `shop/postgres` (the reference shop)."""

    platform: str  # the `shop_platform` setting that picks this adapter

    # -- bulk reads into stocksync's staging (each one shop transaction, reads only) -------------
    def stream_catalog(self, sink: StagingSink) -> int:
        """Every SKU the shop knows (unique), as `CatalogRow` columns (sku, enabled). Returns rows."""
        ...

    def stream_stock(self, sink: StagingSink) -> int:
        """Every SKU that has stock (unique), as `StockRow` columns (sku, qty, wms_seq)."""
        ...

    def stream_demand(self, query: DemandQuery, sink: StagingSink) -> int:
        """The in-window demand now (no lock: the plan's estimate), as `DemandRow` columns."""
        ...

    # -- the checkout freeze (each call commits on its own, so shoppers see it at once) ----------
    def set_freeze(self, *, set_by: str, reason: str, message: str, placeholder: str,
                   ttl_seconds: float) -> Freeze:
        """Close checkout until released or until `ttl_seconds` pass (dead man's switch).
        `placeholder` in `message` becomes the expected end, HH24:MI "UTC", the expiry rounded up
        to the minute. Another holder's freeze is independent of this one."""
        ...

    def release_freezes(self, *, set_by: str) -> int:
        """Release the unreleased freezes `set_by` holds, only those. Returns how many."""
        ...

    def freeze_seconds(self, *, set_by: str) -> float:
        """Seconds checkout was closed by `set_by`'s freezes (unreleased: until now; expired:
        until the expiry); 0 for a holder with none."""
        ...

    def active_freezes(self, *, set_by: str | None = None) -> list[ActiveFreeze]:
        """Unreleased, unexpired freezes (all, or only `set_by`'s), oldest first."""
        ...

    # -- the apply --------------------------------------------------------------------------------
    def apply_session(self, *, lock_timeout_seconds: float) -> AbstractContextManager[ApplySession]:
        """Open the apply's shop transaction and lock the stock against checkout, waiting at most
        `lock_timeout_seconds` (then `ShopUnavailable`). Commits when the `with` block ends
        normally; rolls back (nothing written) when it raises."""
        ...

    # -- the order push ---------------------------------------------------------------------------
    def unacknowledged_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        """Orders the WMS has not acknowledged, in `statuses` (the statuses that are sent)."""
        ...

    def cancelled_orders(self, statuses: Sequence[str]) -> list[OrderRef]:
        """Acknowledged orders now in one of the cancelled `statuses`: release their allocation."""
        ...

    def order_push_session(self, *, lock_timeout_seconds: float) -> AbstractContextManager[OrderPushSession]:
        """One batch's shop transaction holding the order-push lock (see `OrderPushSession`)."""
        ...

    # -- the availability service's live lookups --------------------------------------------------
    def sellable(self, sku: str) -> Sellable | None:
        """The product as checkout sees it now; None: not in the catalog. Reads only."""
        ...

    def live_session(self, sku: str, *, lock_timeout_seconds: float) -> AbstractContextManager[LiveSession]:
        """One SKU's live write-back transaction, its stock row locked (see `LiveSession`)."""
        ...


# ------------------------------------------------------- optional: reads in place, no copy

@dataclass(frozen=True)
class InPlaceReads:
    """The shop's catalog and stock as SELECT statements that stocksync's own connection can run
    where it stands: the same rows, in the same columns, as `stream_catalog` (sku, enabled) and
    `stream_stock` (sku, qty, wms_seq). Each can be embedded as a subquery (one statement, no
    bound parameters)."""

    catalog: sql.Composable
    current_stock: sql.Composable


@runtime_checkable
class InPlaceShop(Protocol):
    """Optional, beside `ShopPort`: an adapter whose shop may be the very database stocksync's own
    connection is in, read with the very role. A run then reads the catalog and stock in place
    (views over these statements) instead of copying a million rows out and back in. Adapters
    without it, or answering None, are copied through `stream_catalog` / `stream_stock`."""

    def in_place_reads(self, conn: psycopg.Connection) -> InPlaceReads | None:
        """The statements when `conn` is connected to the shop's own database as the shop's own
        role (reading them there is reading the shop); None otherwise. Opens no connection."""
        ...

    def apply_in_place(self, conn: psycopg.Connection, *,
                       lock_timeout_seconds: float) -> AbstractContextManager[InPlaceApply]:
        """`apply_session` inside `conn`'s own transaction (only where `in_place_reads(conn)` is
        not None): the same lock, taken there and held until `conn` commits, so the plan's writes
        go to the shop from stocksync's tables in one statement instead of through Python."""
        ...


@runtime_checkable
class InPlaceApply(ApplySession, Protocol):
    """An `ApplySession` on stocksync's own connection (`InPlaceShop.apply_in_place`): besides the
    session's calls, the locked demand and the write take stocksync's tables where they stand."""

    def demand_into(self, table: sql.Identifier, query: DemandQuery) -> int:
        """Fill the (empty) demand table `table` with the in-window demand as it is under the lock,
        `DemandRow` columns. Returns the rows written."""
        ...

    def write_stock_from(self, writes: sql.Composable) -> list[str]:
        """`write_stock` of the rows of the table `writes` (sku, new_qty, wms_seq)."""
        ...


def in_place_reads(shop: ShopPort, conn: psycopg.Connection) -> InPlaceReads | None:
    """`shop`'s in-place reads on `conn`, or None when it offers none (see `InPlaceShop`)."""
    return shop.in_place_reads(conn) if isinstance(shop, InPlaceShop) else None


def demand_rows(rows: Iterable[Sequence[Any]]) -> Iterator[DemandRow]:
    """`DemandRow`s from (sku, unsent_qty, cart_qty) tuples, strictly typed."""
    for sku, unsent, carts in rows:
        yield DemandRow(str(sku), int(unsent), int(carts))
