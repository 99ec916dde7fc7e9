"""The statements of the reference PostgreSQL adapter's SQL folder (shop/postgres/adapter.py), declared once.

stocksync reads and writes the shop only through the statements of the *shop adapter folder*
(`include/sql/shop` by default; `STOCKSYNC_SHOP_ADAPTER_DIR` points at a deployment's copy, see
`include/stocksync/store/db.py`). This module says, for each statement, why stocksync runs it, what it
receives (bound parameters `%(name)s`, identifier placeholders `{name}`), what it must return
(columns: names, PostgreSQL types, order) and what it must do. A statement that keeps to its entry
can be rewritten for any shop table layout without touching stocksync's Python.

Why declared here and not only in prose: the contract test (tests/unit/test_shop_adapter_contract.py)
checks any adapter folder against these entries, and docs/shop-adapter.md carries the table that
`markdown_table()` renders from them (a test keeps the two in step).

Types are what the statement's result columns must be (`format_type` names); cast in the statement
when the shop stores something else (`qty::integer`, `sku::text`). Every statement receives the
identifier `{shop}`: the shop's schema (`STOCKSYNC_SHOP_SCHEMA`, default `shop`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """A bound parameter (`%(name)s`) the caller always passes. A statement may ignore it."""

    name: str
    type: str
    meaning: str
    nullable: bool = False


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str


@dataclass(frozen=True)
class Statement:
    name: str  # the file is <adapter folder>/<name>.sql; callers ask for `shop/<name>`
    purpose: str
    used_by: str
    params: tuple[Param, ...] = ()
    # identifier placeholders besides `{shop}`, with what they stand for
    identifiers: tuple[tuple[str, str], ...] = ()
    # the result columns in order; None: the statement returns no rows
    returns: tuple[Column, ...] | None = None
    effect: str = ""
    # embedded in a larger statement (`(... ) AS x`, `INSERT ... <statement>`): one query, no
    # trailing `;`, nothing after a trailing line comment without a newline
    composed: bool = False

    @property
    def file(self) -> str:
        return f"{self.name}.sql"

    @property
    def identifier_names(self) -> tuple[str, ...]:
        return ("shop", *(name for name, _ in self.identifiers))


SKU = Column("sku", "text", "the shop's SKU (the WMS's SKU)")
ORDER_ID = Column("order_id", "bigint", "the shop's order id")
SET_BY = Param("set_by", "text", "the run id (or operator) that set the freeze")

STATEMENTS: tuple[Statement, ...] = (
    Statement(
        "select_catalog_skus",
        purpose="Every SKU the shop knows, and whether it is on sale. A WMS SKU outside this set is "
                "`unknown` and never written; validation reports the catalog coverage.",
        used_by="postgres adapter `stream_catalog` (the run's copy, shop_mirror.py: validation, plan, apply)",
        returns=(SKU, Column("enabled", "boolean", "on sale")),
        effect="One row per SKU (SKUs unique). Reads only.",
        composed=True,
    ),
    Statement(
        "select_enabled_skus",
        purpose="SKUs on sale: the catalog a full snapshot must cover (guardrail `catalog coverage`), "
                "and the size the extract's page walk is bounded by.",
        used_by="tests and adapters only: stocksync counts the enabled SKUs of the run's catalog copy",
        returns=(SKU,),
        effect="One row per enabled SKU (unique). Reads only.",
        composed=True,
    ),
    Statement(
        "select_current_stock",
        purpose="The shop's sellable quantity per SKU and the last WMS sequence applied to it: the "
                "`old` side of every outcome and the stale-snapshot guard.",
        used_by="postgres adapter `stream_stock` and `ApplySession.read_stock` (the run's copy, shop_mirror.py)",
        returns=(SKU, Column("qty", "integer", "units checkout may sell now (>= 0)"),
                 Column("wms_seq", "bigint", "last WMS sequence written to this SKU (0: never)")),
        effect="One row per SKU that has stock (unique); a catalog SKU without a row counts as 0 with "
               "sequence -1 and gets a row from `update_stock`. Reads only.",
        composed=True,
    ),
    Statement(
        "select_sellable_stock",
        purpose="One row per catalog product as the shop's checkout sees it, for the availability "
                "service (filtered to one SKU by the caller).",
        used_by="postgres adapter `sellable`; shop/postgres/live.py `item` (the availability service)",
        returns=(SKU, Column("enabled", "boolean", "on sale"),
                 Column("qty", "integer", "units checkout may sell; NULL: no stock row (checkout refuses)"),
                 Column("wms_seq", "bigint", "last WMS sequence applied; NULL: no stock row")),
        effect="One row per catalog SKU (unique), products without stock included. Reads only.",
        composed=True,
    ),
    Statement(
        "select_in_window_demand",
        purpose="Units the WMS had not counted when it took its snapshot, per SKU: unsent orders "
                "(and, when switched on, active carts). Subtracted from the WMS figure.",
        used_by="postgres adapter `stream_demand` (`COPY (<statement>) TO STDOUT`: the plan, and twice per "
                "apply, before and under the lock); `LiveSession.demand` and shop/postgres/live.py (live mode)",
        params=(
            Param("include_orders", "boolean", "count unsent orders at all (false: adjustment mode `none`)"),
            Param("unsent_cutoff_seconds", "double precision", "only orders created within this many seconds"),
            Param("unsent_statuses", "text[]", "order statuses that count as not yet sent to the WMS"),
            Param("watermark", "timestamp with time zone",
                  "an order the WMS acknowledged at or before this instant is already in its figure"),
            Param("watermark_source", "text", "`wms` or `request_time` (informational; may be ignored)"),
            Param("include_carts", "boolean", "count active carts too (mode `unsent_orders_and_carts`)"),
            Param("cart_cutoff_seconds", "double precision", "only carts updated within this many seconds"),
        ),
        returns=(SKU, Column("unsent_qty", "bigint", "units in uncounted orders"),
                 Column("cart_qty", "bigint", "units in active carts (0 when carts are off)")),
        effect="One row per SKU with demand (unique; SKUs without demand may be left out). An order "
               "counts when its status is in `unsent_statuses`, it is younger than the cutoff, and the "
               "WMS had not acknowledged it by `watermark` (never acknowledged counts). Reads only.",
        composed=True,
    ),
    Statement(
        "lock_stock",
        purpose="Hold checkout back while the apply recomputes the order adjustment and writes: no "
                "order can take units between the count and the write.",
        used_by="postgres adapter `apply_session`, first in the shop's transaction, after `SET LOCAL lock_timeout`",
        effect="Until the transaction ends: checkouts that take stock wait (in-flight ones finish "
               "first); plain reads of stock go on. Returns no rows. Must honour `lock_timeout`.",
    ),
    Statement(
        "update_stock",
        purpose="The one set-based write of a nightly sync or push: the planned figures, guarded by "
                "the WMS sequence.",
        used_by="postgres adapter `ApplySession.write_stock`, under `lock_stock`; the rows it returns are "
                "recorded as `rows_written`",
        identifiers=(("writes", "a transaction-local table (sku text PRIMARY KEY, new_qty integer, "
                                "wms_seq bigint): the rows to write"),),
        returns=(Column("sku", "text", "one row per SKU written"),),
        effect="For each row of `writes`: set qty = new_qty and the SKU's sequence = wms_seq, only "
               "when the stored sequence is not newer (`wms_seq >= stored`) and qty or sequence moves; "
               "a catalog SKU without stock gets its row. Never lowers a stored sequence.",
    ),
    Statement(
        "lock_stock_row",
        purpose="Live mode: lock one SKU's stock row the way checkout locks it, so no order lands "
                "between the count of uncounted orders and the write-back.",
        used_by="postgres adapter `live_session` and shop/postgres/live.py, first statement of the write-back",
        params=(Param("sku", "text", "the SKU"),),
        returns=(Column("qty", "integer", "units checkout may sell now"),
                 Column("wms_seq", "bigint", "last WMS sequence applied")),
        effect="Row-locks the SKU's stock (as `FOR UPDATE`: checkout's row lock conflicts) until the "
               "transaction ends. No row: the SKU has no stock (nothing is written).",
    ),
    Statement(
        "update_stock_live",
        purpose="Live mode: one SKU's figure, written only when the WMS state is strictly newer than "
                "the one last applied.",
        used_by="`LiveSession.write` and shop/postgres/live.py, under `lock_stock_row`",
        params=(Param("sku", "text", "the SKU"), Param("new_qty", "integer", "the new sellable quantity"),
                Param("wms_seq", "bigint", "the WMS sequence of the figure")),
        returns=(Column("qty", "integer", "the written quantity"),
                 Column("wms_seq", "bigint", "the written sequence")),
        effect="Writes only when the stored sequence < `wms_seq` (strictly: equal means already "
               "applied); one row back when written, none otherwise.",
    ),
    Statement(
        "insert_checkout_freeze",
        purpose="Close checkout for the length of a sync (or its apply), with a shopper message, "
                "until released or until the TTL passes (dead man's switch).",
        used_by="postgres adapter `set_freeze` (its own transaction, committed at once)",
        params=(
            Param("reason", "text", "why (shown to operators)"),
            Param("message", "text", "the shopper message; may hold `placeholder`"),
            Param("placeholder", "text", "replaced in `message` by the expected end, HH24:MI \"UTC\", "
                                         "the expiry rounded up to the minute"),
            SET_BY,
            Param("ttl_seconds", "double precision", "seconds until the freeze expires by itself"),
        ),
        returns=(Column("freeze_id", "bigint", "the freeze's id"),
                 Column("set_at", "timestamp with time zone", "when it was set"),
                 Column("expires_at", "timestamp with time zone", "set_at + ttl"),
                 Column("shopper_message", "text", "the message as shoppers see it")),
        effect="One row back. From commit until released or expired, the shop's checkout refuses "
               "every order; another holder's freeze is independent of this one.",
    ),
    Statement(
        "update_checkout_freeze",
        purpose="Reopen checkout after a run: release the freezes this run set, never anybody else's "
                "(a manual maintenance freeze survives any sync).",
        used_by="freeze.py `release_freezes`",
        params=(SET_BY,),
        returns=(Column("freeze_id", "bigint", "one row per freeze released"),),
        effect="Releases the unreleased freezes whose holder is `set_by`, only those.",
    ),
    Statement(
        "select_checkout_freeze",
        purpose="How long a run kept checkout closed (the run report's freeze window).",
        used_by="freeze.py `freeze_seconds`",
        params=(SET_BY,),
        returns=(Column("freeze_seconds", "double precision",
                        "seconds closed: released or expired at, else now, minus set at; summed"),
                 Column("freezes", "bigint", "how many freezes `set_by` set")),
        effect="Exactly one row (0, 0 for a holder with no freezes). Reads only.",
    ),
    Statement(
        "select_active_freeze",
        purpose="Freezes that close checkout right now, all of them or one holder's.",
        used_by="freeze.py `active_freezes`; shop/postgres/live.py `item` (the availability service)",
        params=(Param("set_by", "text", "only this holder's; NULL: everybody's", nullable=True),),
        returns=(Column("freeze_id", "bigint", "the freeze's id"),
                 Column("reason", "text", "why"),
                 Column("shopper_message", "text", "what shoppers see"),
                 Column("set_by", "text", "who set it"),
                 Column("set_at", "timestamp with time zone", "when"),
                 Column("expires_at", "timestamp with time zone", "when it lapses by itself")),
        effect="Unreleased and unexpired freezes, oldest first. Reads only.",
        composed=True,
    ),
    # the order push: sends the shop's orders to the WMS between syncs (its own SQL: include/sql/loop/)
    Statement(
        "select_unacknowledged_orders",
        purpose="Orders the WMS has not acknowledged yet, in the statuses the order push sends.",
        used_by="postgres adapter `unacknowledged_orders` (copied into stocksync's database by order_push.py)",
        params=(Param("statuses", "text[]", "order statuses that are sent to the WMS"),),
        returns=(ORDER_ID, Column("created_at", "timestamp with time zone", "when it was placed")),
        effect="One row per such order (unique). Reads only.",
        composed=True,
    ),
    Statement(
        "select_cancelled_orders",
        purpose="Orders the WMS acknowledged that the shop has since cancelled: their WMS allocation "
                "must be released.",
        used_by="postgres adapter `cancelled_orders` (copied into stocksync's database by order_push.py)",
        params=(Param("cancelled_statuses", "text[]", "order statuses that mean cancelled"),),
        returns=(ORDER_ID, Column("created_at", "timestamp with time zone", "when it was placed")),
        effect="One row per acknowledged order in a cancelled status (unique). Reads only.",
        composed=True,
    ),
    Statement(
        "select_order_lines",
        purpose="The lines of the orders the order push is about to send.",
        used_by="postgres adapter `OrderPushSession.order_lines` (the batch about to be sent)",
        params=(Param("order_ids", "bigint[]", "the orders"),),
        returns=(ORDER_ID, SKU, Column("qty", "integer", "units ordered (> 0)")),
        effect="One row per (order, SKU), ordered by order and SKU. Reads only.",
    ),
    Statement(
        "update_order_acknowledged",
        purpose="Record when the WMS acknowledged each sent order: from then on the WMS's figures "
                "include it and `select_in_window_demand` stops subtracting it.",
        used_by="postgres adapter `OrderPushSession.acknowledge`, after the WMS's receipts, under "
                "lock_stock_for_order_push",
        params=(Param("order_ids", "bigint[]", "the orders"),
                Param("acknowledged_at", "timestamp with time zone[]", "the WMS's receipt time of each, same order")),
        returns=(ORDER_ID,),
        effect="Sets the acknowledgement time of the listed orders that have none (a first time is "
               "kept); one row per order changed.",
    ),
    Statement(
        "lock_stock_for_order_push",
        purpose="Held by the order push from before it sends a batch until the acknowledgements are "
                "committed, so an apply never counts an order the WMS already has as unacknowledged "
                "(it would be subtracted twice).",
        used_by="postgres adapter `order_push_session`, first in each batch's transaction, after "
                "`SET LOCAL lock_timeout`",
        effect="Until the transaction ends: `lock_stock` (the apply) waits; checkout and reads go on. "
               "Returns no rows.",
    ),
)

# Run by `pipeline.apply_schema` (demo stacks and tests), not by a sync. Not part of the statement
# contract: a real shop's adapter replaces it with a harmless statement (`SELECT 1`), because
# stocksync must never create or replace tables or functions in a real shop.
BOOTSTRAP = "create_schema"

# Optional, test only: in an adapter for differently shaped shop tables, the contract test runs this
# file (with `{shop}`) right after it seeded the reference shop, to build the adapter's own tables
# from the seeded reference ones; never run by a sync.
CONTRACT_FIXTURE = "contract_fixture"

BY_NAME: dict[str, Statement] = {statement.name: statement for statement in STATEMENTS}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table() -> str:
    """The contract as the table in docs/shop-adapter.md (a test checks the doc carries it)."""
    lines = ["| statement | receives | returns (in order) | why, and what it must do |", "| --- | --- | --- | --- |"]
    for s in STATEMENTS:
        receives = [f"`%({p.name})s` {p.type}{' (may be NULL)' if p.nullable else ''}" for p in s.params]
        receives += [f"`{{{name}}}` {meaning}" for name, meaning in s.identifiers]
        returns = ", ".join(f"`{c.name}` {c.type}" for c in s.returns) if s.returns is not None else "no rows"
        purpose = s.purpose + (" Embedded in a larger statement: one query, no `;`." if s.composed else "")
        lines.append(f"| `{s.name}` | {_cell('; '.join(receives) or '-')} | {_cell(returns)} | "
                     f"{_cell(purpose)} {_cell(s.effect)} |")
    return "\n".join(lines) + "\n"
