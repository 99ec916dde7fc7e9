"""Send accepted shop orders to the WMS and record its acknowledgement (`orders_to_wms`).

The sync's adjustment (`max(0, available - orders the WMS has not counted)`) needs to know which
orders the WMS has counted: `shop.orders.wms_acknowledged_at`, the WMS's own receipt time. This
module is what sets it (docs/order-push-and-intraday.md):

- unacknowledged orders in the sent statuses (`unsent_statuses`), oldest first, in batches, each
  `POST /v1/orders` with `Idempotency-Key: <order_key_prefix><order id>`;
- the receipt's `received_at` (the WMS's clock: the clock its snapshots and change feed state
  their watermarks on) is written on the order, and the receipt on `stocksync.order_pushes`;
- sending twice never counts twice: the key is the order's, so a crash between the POST and the
  record, a timeout whose request did arrive, or a re-run all end with the WMS answering the
  original receipt (200) for the repeat, which is then recorded;
- a batch holds `shop/lock_stock_for_order_push` (ROW SHARE on stock, checkout unaffected) from
  before its first POST until its acknowledgements are committed, so a sync's apply (EXCLUSIVE)
  never sees an order the WMS already counted as unacknowledged;
- refusals (409 insufficient stock, 422 unknown SKU or invalid) go to
  `stocksync.order_dead_letters` with the WMS's reason and are not sent again until ops re-queue
  them (`requeue()`); each batch with refusals raises one alert (the caller's `on_dead_letters`);
- the WMS's answers are classified and retried by one policy (the one WMS client, `wms/client.py`):
  timeouts and 5xx are retried within the run with backoff (the order stays first in line); after
  `order_attempts` such failures of one order the run records what it has and raises
  `WmsUnavailable` naming the first cause (Airflow retries the task). A `429` is the WMS pacing us,
  not a failure: the push waits what its `Retry-After` says (seconds or an HTTP-date, at most
  `retry_after_max_seconds`; backoff when it says nothing), outside the push lock, and goes on;
  when the next wait would pass the run's budget (`order_deadline_seconds`) the run stops cleanly,
  records why (`order_push_runs.stopped`) and leaves the rest to the next run;
- a receipt time (`received_at`) is checked like a snapshot's times: one later than the moment its
  answer arrived, or earlier than the order's creation, by more than `clock_skew_seconds`, is
  replaced by the moment the answer arrived plus `clock_skew_seconds` (the latest time the WMS can
  have counted the order on any clock we accept), so the order never counts as counted before a
  snapshot could include it, nor stays uncounted for ever; the WMS's value and the reason are kept
  on `stocksync.order_pushes` and counted on the run;
- cancelled orders the WMS acknowledged are cancelled there (`POST /v1/orders/cancel`, the same
  key), once; a WMS refusal (already shipped) is recorded, not retried.

Nothing here commits except the batch transactions themselves, one per batch: what a batch
recorded survives a failure of the next one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import psycopg
import requests
from psycopg import sql
from psycopg.rows import dict_row

from include.stocksync.config.settings import Settings
from include.stocksync.runs.uow import committed, transaction
from include.stocksync.shop.port import OrderPushSession, OrderRef, ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect, execute_file, query
from include.stocksync.wms import client as wms_http
from include.stocksync.wms.sources.base import WmsContractError, WmsUnavailable, parse_timestamp, safe_text

log = logging.getLogger(__name__)

ORDERS_PATH = "/v1/orders"
CANCEL_PATH = "/v1/orders/cancel"
REFUSAL_STATUSES = frozenset({409, 422})
# a batch stops taking new orders after holding the push lock this long (a sync's apply waits for it)
BATCH_HOLD_SECONDS = 2.0
MAX_REASON = 2000
# a receipt is a JSON object that echoes the order's lines: a longer answer than this, plus
# RECEIPT_BYTES_PER_LINE for each line sent (a 64-character SKU, escaped, and its quantity), is
# refused inside the read; a refusal's body is cut there, never refused (its reason is kept)
RECEIPT_MAX_BYTES = 64 * 1024
RECEIPT_BYTES_PER_LINE = 512
# one attempt per call: `push_orders` and `push_cancellations` retry with the settings' policy
ONE_ATTEMPT = wms_http.RetryPolicy(attempts=1, backoff=0.0, retry_after_max=0.0)


def order_key(settings: Settings, order_id: int) -> str:
    """The Idempotency-Key (and order_ref) of a shop order: the configured prefix and its id."""
    return f"{settings.loop.order_key_prefix}{order_id}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class WmsOrders:
    """`POST /v1/orders` and `/v1/orders/cancel` through the one WMS client (`WmsHttp`) over a
    `requests.Session` carrying the bearer token.

    One attempt per call, classified by the client (`wms_http.check_status`): a transient failure
    raises `wms_http.WmsTransient` (with the WMS's Retry-After) and the caller decides when to try
    again (outside the push lock), with the same `RetryPolicy`. An accepted order's answer must be a
    JSON object (the receipt); a refusal's body is kept as the WMS wrote it, for its reason."""

    def __init__(self, session: requests.Session, base_url: str, *, timeout: float) -> None:
        self.http = wms_http.WmsHttp(session, base_url, ONE_ATTEMPT, timeout)

    def _post(self, path: str, key: str, body: dict[str, Any] | None, lines: int = 0) -> Answer:
        where = f"{path} for {key}"
        # no answer raises WmsTransient: the request may have arrived, and the retry with the same
        # key gets the original receipt
        reply = self.http.once("POST", path, where=where, max_bytes=RECEIPT_MAX_BYTES + lines * RECEIPT_BYTES_PER_LINE,
                               json_body=body, headers={"Idempotency-Key": key})
        if reply.status in (200, 201):
            receipt = reply.json(where)
            if not isinstance(receipt, dict):
                raise WmsContractError(f"{where}: the WMS answered HTTP {reply.status} with a JSON "
                                       f"{type(receipt).__name__}, not a receipt object")
            return Answer(reply.status, receipt)
        try:
            parsed = orjson.loads(reply.content)
        except orjson.JSONDecodeError:
            parsed = None
        return Answer(reply.status, parsed if parsed is not None else reply.text(MAX_REASON * 2))

    def send(self, key: str, lines: list[dict[str, Any]]) -> Answer:
        return self._post(ORDERS_PATH, key, {"order_ref": key, "lines": lines}, len(lines))

    def cancel(self, key: str) -> Answer:
        return self._post(CANCEL_PATH, key, None)


@dataclass
class DeadLetter:
    order_id: int
    http_status: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PushResult:
    run_id: str
    batches: int = 0
    sent: int = 0           # 201: new to the WMS
    repeated: int = 0       # 200: the WMS already had it (crash, timeout, re-run)
    acknowledged: int = 0   # acknowledgements written on shop orders
    dead_lettered: list[DeadLetter] = field(default_factory=list)
    requeued: int = 0
    cancels_sent: int = 0
    cancels_refused: int = 0
    rate_limited: int = 0       # 429 answers: the WMS asked us to slow down
    waited_seconds: float = 0.0  # paused for the WMS (Retry-After, backoff)
    receipts_corrected: int = 0  # receipt times replaced (see `sane_receipt_time`)
    stopped: str | None = None  # why the run ended before the queue was empty

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["dead_lettered"] = len(self.dead_lettered)
        return out


def _reason(answer: Answer) -> str:
    """The WMS's words for a refusal (its `error` text, else its body), or its status when it gave none."""
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        text = body["error"]
    else:
        text = "" if body is None else str(body)
    return safe_text(text).strip()[:MAX_REASON] or f"HTTP {answer.status}"


def _receipt_time(answer: Answer, key: str, field_name: str) -> tuple[datetime, str | None]:
    body = answer.body if isinstance(answer.body, dict) else {}
    at = parse_timestamp(body.get(field_name), field_name)
    if at is None:
        raise WmsContractError(f"the WMS answered HTTP {answer.status} for {key} without {field_name}: "
                               f"{str(answer.body)[:300]}")
    receipt = body.get("receipt_id") if field_name == "received_at" else body.get("cancel_id")
    if isinstance(receipt, int) and not isinstance(receipt, bool):
        receipt = str(receipt)  # a number is an id too
    return at, safe_text(receipt)[:200] if isinstance(receipt, str) else None


def units_by_sku(lines: Any) -> dict[str, int] | None:
    """An order's or a receipt's `lines` as units per SKU; None when they are not a list of
    {"sku": text, "qty": whole number > 0}."""
    if not isinstance(lines, list):
        return None
    units: dict[str, int] = {}
    for line in lines:
        sku = line.get("sku") if isinstance(line, dict) else None
        qty = line.get("qty") if isinstance(line, dict) else None
        if not isinstance(sku, str) or not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            return None
        units[sku] = units.get(sku, 0) + qty
    return units


def receipt_mismatch(body: dict[str, Any], key: str, sent: list[dict[str, Any]]) -> str | None:
    """Why a receipt cannot be this order's (None: it is): another `order_ref`, or lines that are
    not the ones sent (SKU by SKU). A key used before (a shop database restored, its ids handed out
    again; `order_key_prefix` changed back) gets the earlier order's receipt: acknowledging it would
    count an order the WMS never allocated."""
    if body.get("order_ref") not in (None, key):
        return (f"the WMS answered a receipt for another order ({safe_text(str(body.get('order_ref')))[:200]!r}) "
                f"to Idempotency-Key {key!r}: the key was used before (shop database restored? order_key_prefix "
                "changed?)")
    received, wanted = units_by_sku(body.get("lines")), units_by_sku(sent)
    if received != wanted:
        shown = safe_text(json.dumps(body.get("lines"), default=str))[:300]
        return (f"the WMS's receipt for {key!r} lists other lines than the order sent ({shown}; sent "
                f"{json.dumps(wanted)[:300]}): not this order's receipt (the key used before: shop database "
                "restored? order_key_prefix changed?), so it is not acknowledged")
    return None


def sane_receipt_time(received_at: datetime, *, created_at: datetime, answered_at: datetime,
                      skew: timedelta) -> tuple[datetime, str | None]:
    """The acknowledgement time to record for a receipt, and why it is not the WMS's (None: it is).

    The WMS received the order after the shop created it and before its answer arrived; on the
    WMS's clock (which may differ from ours by up to `skew`), within those bounds widened by
    `skew`. Outside them the time is not sane: later, it would keep the order counted as unsent
    (stock under-stated until then); earlier than the order, it would count the order as included
    in snapshots taken before the WMS had it (oversell). Either way the time used is when the
    answer arrived plus `skew`: the latest the WMS can have counted it on any accepted clock."""
    latest, earliest = answered_at + skew, created_at - skew
    if received_at > latest:
        why = (f"received_at {received_at.isoformat()} is later than the WMS's answer arrived "
               f"({answered_at.isoformat()}) plus the allowed clock skew of {skew.total_seconds():.0f} s")
    elif received_at < earliest:
        why = (f"received_at {received_at.isoformat()} is before the order was created "
               f"({created_at.isoformat()}) minus the allowed clock skew of {skew.total_seconds():.0f} s")
    else:
        return received_at, None
    return latest, (f"{why} (config clock_skew_seconds); recorded as {latest.isoformat()}, the latest time the WMS "
                    "can have counted it")


def _open_run(dsn: str, run_id: str) -> None:
    with transaction(dsn) as conn:
        execute_file(conn, "loop/insert_order_push_run", {"run_id": run_id})


RUN_FIGURES = ("batches", "sent", "repeated", "acknowledged", "dead_lettered", "requeued", "cancels_sent",
               "cancels_refused", "rate_limited", "waited_seconds", "receipts_corrected")


def _add_figures(conn: psycopg.Connection, run_id: str, **figures: float) -> None:
    execute_file(conn, "loop/update_order_push_run",
                 {"run_id": run_id, **{k: figures.get(k, 0) for k in RUN_FIGURES}})


def _record_stopped(conn: psycopg.Connection, run_id: str, stopped: str) -> None:
    with committed(conn):
        execute_file(conn, "loop/update_order_push_run_stopped", {"run_id": run_id, "stopped": stopped[:2000]})


def finish_run(dsn: str, run_id: str, error: str | None = None) -> dict[str, Any] | None:
    with transaction(dsn) as conn:
        row = execute_file(conn, "loop/update_order_push_run_finish", {"run_id": run_id, "error": error}).fetchone()
    return dict(zip((*RUN_FIGURES, "stopped"), row, strict=True)) if row else None


def requeue(dsn: str, *, order_ids: Iterable[int] = (), everything: bool = False, by: str = "ops",
            run_id: str | None = None) -> list[int]:
    """Re-queue held orders (these ids, or all with `everything`): the next push sends them again."""
    ids = sorted({int(i) for i in order_ids})
    if not ids and not everything:
        return []
    with transaction(dsn) as conn:
        rows = execute_file(conn, "loop/update_dead_letters_requeue",
                            {"order_ids": ids, "all": everything, "requeued_by": by[:200]}).fetchall()
        if run_id:
            _add_figures(conn, run_id, requeued=len(rows))
    return sorted(int(r[0]) for r in rows)


def dead_letters(dsn: str, limit: int = 1000) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("loop/select_dead_letters"), {"limit": limit}).fetchall()


@dataclass(frozen=True)
class Ack:
    """One receipt to record: the time used, and the WMS's own when it was not sane (with why)."""

    order_id: int
    key: str
    receipt_id: str | None
    acknowledged_at: datetime
    status: int
    wms_received_at: datetime | None = None
    note: str | None = None


def _stage_orders(conn: psycopg.Connection, table: str, orders: list[OrderRef]) -> sql.Composed:
    """The shop's orders `orders` in a transaction-local table of stocksync's database (the shop is
    read through its port, never joined); the query that reads them back as (order_id, created_at)."""
    ident = sql.Identifier(table)
    conn.execute(query("loop/create_shop_orders", orders=ident))
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} (order_id, created_at) FROM STDIN").format(ident)) as copy:
        for order in orders:
            copy.write_row((order.order_id, order.created_at))
    return sql.SQL("SELECT order_id, created_at FROM {}").format(ident)


def push_orders(dsn: str, client: WmsOrders, settings: Settings, *, run_id: str,
                on_dead_letters: Callable[[int, list[DeadLetter]], None] | None = None,
                shop: ShopPort | None = None) -> PushResult:
    """Send the queue, batch by batch (see the module docstring). `on_dead_letters(batch, letters)`
    is called once per batch with refusals, after the batch is committed. `shop`: the shop port
    (none: the reference shop in stocksync's database)."""
    port = shop if shop is not None else open_shop(dsn)
    loop = settings.loop
    result = PushResult(run_id)
    _open_run(dsn, run_id)
    deadline = time.monotonic() + loop.order_deadline_seconds
    skew = timedelta(seconds=settings.clock_skew_seconds)
    retries = wms_http.Retries(wms_http.RetryPolicy.from_settings(settings, attempts=loop.order_attempts))
    with connect(dsn) as conn:
        while result.sent + result.repeated < loop.order_max_per_run and time.monotonic() < deadline:
            letters: list[DeadLetter] = []
            acked: list[Ack] = []
            transient: wms_http.WmsTransient | None = None
            # the shop's batch transaction holds the order-push lock (an apply waits) until the
            # acknowledgements commit. stocksync's record of the batch (the receipts) commits first,
            # inside it: if the shop's commit then fails, its orders are still unacknowledged there and
            # the next run sends them again with the same keys (the WMS answers the original receipts,
            # recorded once); the other way round, a record lost after the shop committed was lost for
            # good (acknowledged orders are never sent again)
            lock_wait = settings.lock_timeout_seconds
            with port.order_push_session(lock_timeout_seconds=lock_wait) as held, conn.transaction():
                held_since = time.monotonic()
                unacknowledged = _stage_orders(conn, "shop_unacknowledged",
                                               port.unacknowledged_orders(settings.unsent_statuses))
                batch = conn.execute(query("loop/select_orders_to_push", unacknowledged=unacknowledged),
                                     {"statuses": list(settings.unsent_statuses),
                                      "limit": min(loop.order_batch_size,
                                                   loop.order_max_per_run - result.sent - result.repeated)}
                                     ).fetchall()
                if not batch:
                    break
                order_ids = [int(r[0]) for r in batch]
                created = {int(r[0]): r[1] for r in batch}
                lines: dict[int, list[dict[str, Any]]] = {i: [] for i in order_ids}
                for line in held.order_lines(order_ids):
                    lines[line.order_id].append({"sku": line.sku, "qty": line.qty})
                for order_id in order_ids:
                    if acked or letters:  # at least one order per batch, then within the hold budget
                        if time.monotonic() - held_since > BATCH_HOLD_SECONDS:
                            break
                    key = order_key(settings, order_id)
                    try:
                        answer = client.send(key, lines[order_id])
                    except wms_http.WmsTransient as exc:
                        transient = exc
                        break  # oldest first: the next batch starts with this order again
                    retries.succeeded()
                    if answer.status in (200, 201):
                        body = answer.body if isinstance(answer.body, dict) else {}
                        mismatch = receipt_mismatch(body, key, lines[order_id])
                        ack = None if mismatch else _ack(answer, order_id, key, created[order_id], skew)
                        if ack is not None and ack.receipt_id is not None:
                            mismatch = _receipt_taken(conn, ack, acked)
                        if mismatch:
                            letters.append(DeadLetter(order_id, answer.status, safe_text(mismatch)[:MAX_REASON]))
                            continue
                        assert ack is not None
                        acked.append(ack)
                    elif answer.status in REFUSAL_STATUSES or _refused_for_this_order(answer.status):
                        letters.append(DeadLetter(order_id, answer.status, _reason(answer)))
                    else:
                        raise WmsContractError(f"POST {ORDERS_PATH} for {key} answered HTTP {answer.status}: "
                                               f"{_reason(answer)}")
                written = _record_batch(conn, held, run_id, acked, letters) if acked or letters else 0
                result.batches += 1 if acked or letters else 0
                result.sent += sum(1 for a in acked if a.status == 201)
                result.repeated += sum(1 for a in acked if a.status == 200)
                result.acknowledged += written
                result.receipts_corrected += sum(1 for a in acked if a.note)
                result.dead_lettered += letters
            if letters and on_dead_letters is not None:
                on_dead_letters(result.batches, letters)
            if transient is not None and not _pause(conn, result, retries, transient, deadline):
                break
        else:
            result.stopped = "order_max_per_run or order_deadline_seconds reached; the next run goes on"
        if result.stopped:
            _record_stopped(conn, run_id, result.stopped)
    return result


def _refused_for_this_order(status: int) -> bool:
    """A 4xx other than the contract's refusals (409, 422) answered for one order (400 bad request,
    404, 410, 413 too many lines...): this order's, held as a dead letter like a refusal, so the
    orders behind it are still sent. Refused credentials (401, 403) and the transient ones (408,
    429) never get here: the WMS client raised for them."""
    return 400 <= status < 500


def _receipt_taken(conn: psycopg.Connection, ack: Ack, acked: list[Ack]) -> str | None:
    """Why `ack`'s receipt cannot be its order's: its receipt id already acknowledges another order
    (in this batch or recorded before)."""
    other = next((a.order_id for a in acked if a.receipt_id == ack.receipt_id), None)
    if other is None:
        row = conn.execute("SELECT order_id FROM stocksync.order_pushes WHERE receipt_id = %s AND order_id <> %s "
                           "LIMIT 1", (ack.receipt_id, ack.order_id)).fetchone()
        other = row[0] if row else None
    if other is None:
        return None
    return (f"the WMS answered receipt {ack.receipt_id!r} for {ack.key!r}, the receipt it gave order {other}: "
            "one receipt cannot acknowledge two orders")


def _pause(conn: psycopg.Connection, result: PushResult, retries: wms_http.Retries,
           failure: wms_http.WmsTransient, deadline: float) -> bool:
    """After a transient failure (outside the push lock): wait what the policy says and return True
    to go on; False when the next try would start past the run's budget (the run stops cleanly,
    the next run goes on). Raises `WmsUnavailable` when one order's attempts are used up."""
    pause = retries.failed(failure)
    done = result.sent + result.repeated
    if retries.exhausted:
        result.stopped = f"WMS unavailable: {retries.describe(failure)}"
        _record_stopped(conn, result.run_id, result.stopped)
        raise WmsUnavailable(f"orders_to_wms stopped after {done} orders: {retries.describe(failure)}; the next "
                             "try sends the rest (same keys)") from failure
    go_on = time.monotonic() + pause <= deadline
    if go_on:
        log.info("orders_to_wms: %s; waiting %.2f s", failure, pause)
        time.sleep(pause)
        result.waited_seconds += pause
    else:
        result.stopped = (f"{'rate limited' if failure.rate_limited else 'WMS unavailable'} after {done} orders: "
                          f"the next try ({pause:.1f} s away) would pass the run's budget (config "
                          f"loop.order_deadline_seconds); the next run sends the rest. {retries.describe(failure)}")
        log.warning("orders_to_wms: %s", result.stopped)
    result.rate_limited += int(failure.rate_limited)
    with committed(conn):
        _add_figures(conn, result.run_id, rate_limited=int(failure.rate_limited), waited_seconds=pause if go_on else 0)
    return go_on


def _ack(answer: Answer, order_id: int, key: str, created_at: datetime, skew: timedelta) -> Ack:
    """The receipt of an accepted order, its time checked (`sane_receipt_time`)."""
    received_at, receipt = _receipt_time(answer, key, "received_at")
    used, note = sane_receipt_time(received_at, created_at=created_at, answered_at=datetime.now(timezone.utc),
                                   skew=skew)
    if note:
        log.warning("order %s: %s", order_id, note)
    return Ack(order_id, key, receipt, used, answer.status, received_at if note else None, note)


def _record_batch(conn: psycopg.Connection, held: OrderPushSession, run_id: str, acked: list[Ack],
                  letters: list[DeadLetter]) -> int:
    """The batch's acknowledgements (the shop's orders, through its batch session, and
    order_pushes) and refusals, in the batch's transactions."""
    written = 0
    if acked:
        ids = [a.order_id for a in acked]
        times = [a.acknowledged_at for a in acked]
        written = len(held.acknowledge(ids, times))
        execute_file(conn, "loop/upsert_order_pushes", {
            "order_ids": ids, "keys": [a.key for a in acked], "receipt_ids": [a.receipt_id for a in acked],
            "acknowledged_at": times, "answers": [json.dumps([a.status]) for a in acked],
            "wms_received_at": [a.wms_received_at for a in acked], "receipt_time_notes": [a.note for a in acked]})
    for letter in letters:
        execute_file(conn, "loop/insert_dead_letter", {
            "order_id": letter.order_id, "http_status": letter.http_status, "reason": letter.reason,
            "body": json.dumps({"error": letter.reason}), "run_id": run_id})
    _add_figures(conn, run_id, batches=1, sent=sum(1 for a in acked if a.status == 201),
                 repeated=sum(1 for a in acked if a.status == 200), acknowledged=written, dead_lettered=len(letters),
                 receipts_corrected=sum(1 for a in acked if a.note))
    return written


def push_cancellations(dsn: str, client: WmsOrders, settings: Settings, *, run_id: str,
                       shop: ShopPort | None = None) -> PushResult:
    """Cancel in the WMS the acknowledged orders the shop has cancelled, once each."""
    result = PushResult(run_id)
    port = shop if shop is not None else open_shop(dsn)
    deadline = time.monotonic() + settings.loop.order_deadline_seconds
    policy = wms_http.RetryPolicy.from_settings(settings, attempts=settings.loop.order_attempts)
    with connect(dsn) as conn:
        while time.monotonic() < deadline:
            with committed(conn):
                cancelled = _stage_orders(conn, "shop_cancelled",
                                          port.cancelled_orders(settings.loop.cancelled_statuses))
                rows = conn.execute(query("loop/select_cancels_to_send", cancelled=cancelled),
                                    {"limit": settings.loop.order_batch_size}).fetchall()
            if not rows:
                break
            for (order_id,) in rows:
                key = order_key(settings, int(order_id))
                # retried like a push (Retry-After honoured) within the budget; then the task retry goes on
                answer = wms_http.call(lambda key=key: client.cancel(key), policy, deadline=deadline)
                params: dict[str, Any] = {"order_id": int(order_id), "key": key, "cancel_receipt_id": None,
                                          "cancelled_at": None, "cancel_refused": None}
                body = answer.body if isinstance(answer.body, dict) else {}
                if answer.status in (200, 201) and body.get("order_ref") not in (None, key):
                    params["cancel_refused"] = safe_text(
                        f"HTTP {answer.status}: the WMS answered a cancellation of another order "
                        f"({str(body.get('order_ref'))[:200]!r}) for {key!r}: not recorded as cancelled")[:MAX_REASON]
                    result.cancels_refused += 1
                elif answer.status in (200, 201):
                    params["cancelled_at"], params["cancel_receipt_id"] = _receipt_time(answer, key, "cancelled_at")
                    result.cancels_sent += 1
                elif answer.status in (404, 409, 422):
                    params["cancel_refused"] = f"HTTP {answer.status}: {_reason(answer)}"
                    result.cancels_refused += 1
                else:
                    raise WmsContractError(f"POST {CANCEL_PATH} for {key} answered HTTP {answer.status}: "
                                           f"{_reason(answer)}")
                with committed(conn):
                    execute_file(conn, "loop/upsert_order_cancel", params)
                    _add_figures(conn, run_id, cancels_sent=1 if params["cancelled_at"] else 0,
                                 cancels_refused=1 if params["cancel_refused"] else 0)
    return result


def dead_letter_alert(*, dag_id: str, run_id: str, batch: int, letters: list[DeadLetter]) -> dict[str, Any]:
    """The one alert of a batch with refused orders."""
    ids = [letter.order_id for letter in letters]
    return {
        "text": f"stocksync: the WMS refused {len(letters)} order(s) in batch {batch} of {dag_id} run {run_id}; "
                "they are held in stocksync.order_dead_letters and not sent again until re-queued",
        "kind": "order_dead_letters", "dag_id": dag_id, "run_id": run_id, "batch": batch,
        "orders": [letter.as_dict() for letter in letters[:100]],
        "requeue": f"trigger {dag_id} with conf {{\"requeue_order_ids\": {ids[:100]}}}, or run "
                   f"python -m include.stocksync orders requeue {' '.join(map(str, ids[:20]))}",
    }
