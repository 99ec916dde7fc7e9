"""The ASGI app of the availability service (FastAPI; run by `python -m include.stocksync.availability`).

Routes: `POST <path>` (default `/inventory`) the inventory script; `GET /metrics` Prometheus text
(protected like the script); `GET /checkout-freeze` the web server's checkout gate
(checkout_gate.py, deploy/nginx/); `GET /health` liveness for process supervision (open, says
nothing and touches nothing).

Before anything else, a worker answers at most `MAX_IN_FLIGHT` script requests at once
(`LoadShedder`): one more is answered at once with unknown (cause `overloaded`), before its body is
read, instead of queueing behind the others and being answered late. Then the checks on the script
route, cheapest and least trusting first, so that a caller who may not ask never costs a database
query: rate limit (429), IP range (403), shared secret (403), declared body size (413), content
type (415), body read within its size and time bounds (413/408), form parsing (400); then the
platform's validation request is answered without the database, and only then is the database
asked. Every answer, refusals and shed requests included, carries the same headers
(`protocol.HEADERS`) and is counted in the metrics; every answer but a shed one is logged with its
latency (shedding is logged once a second at most: logging each would add work to an overloaded
worker). The secret, the query string and the DSN are never logged.

"Unknown" (`Available: -1`, HTTP 200) is the answer whenever the number cannot be known in time:
database down, slow or failing, the worker overloaded, checkout frozen, an item we cannot map.
The platform then applies the merchant's policy for an unreachable script; we never make it wait
past the budget and never show it an error page for it.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from include.stocksync.availability import checkout_gate
from include.stocksync.availability import protocol as p
from include.stocksync.availability.live import LiveWriter
from include.stocksync.availability.metrics import SHED_CAUSE, Metrics
from include.stocksync.availability.pool import ConnectionPool, DatabaseUnavailable
from include.stocksync.availability.ratelimit import RateLimiter
from include.stocksync.availability.settings import CHECKOUT_FREEZE_PATH, AvailabilitySettings, load
from include.stocksync.availability.skus import ResolutionCache, options_key
from include.stocksync.availability.wms import WmsClient, fallback_detail
from include.stocksync.shop.mysql_family import MySQLShop
from include.stocksync.shop.mysql_live import LiveShopFailure, MySQLLiveShop
from include.stocksync.shop.port import ShopPort, ShopUnavailable
from include.stocksync.shop.postgres.live import PostgresLiveShop
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import query
from include.stocksync.ui.security_headers import SecurityHeadersMiddleware
from include.stocksync.wms.errors import WmsError

log = logging.getLogger("stocksync.availability")
# The item's code and options as one answer's log line shows them: the largest form the protocol
# accepts makes a 23,000-character options key, and every answer is logged.
LOGGED_CHARS = 200


def logged(value: Any) -> str:
    """`value`'s repr, cut to LOGGED_CHARS characters (saying how many more there were)."""
    text = repr(value)
    return text if len(text) <= LOGGED_CHARS else f"{text[:LOGGED_CHARS]}...(+{len(text) - LOGGED_CHARS} chars)"


# Causes of unknown answers (X-Inventory-Cause), documented in docs/availability.md.
UNKNOWN_CAUSES = ("db_down", "db_connect", "db_timeout", "db_error", SHED_CAUSE, "unknown_sku",
                  "unmapped_options", "mapped_sku_missing", "checkout_frozen", "internal_error")


@dataclass
class Answer:
    """What we answer and why; `response()` renders it, the metrics and the log read it."""

    status_code: int
    result: str  # available | unavailable | unknown | probe | rejected
    qty: int
    cause: str
    message: str
    sku: str | None = None
    source: str = "none"  # shop | live | none
    live: str | None = None  # written | current | fallback
    live_cause: str | None = None
    detail: str = ""
    retry_after: int | None = None
    requested: int | None = None

    @property
    def status(self) -> str:
        if self.result == "available" and self.requested is not None and self.qty < self.requested:
            return "limited"
        return self.result

    def response(self) -> Response:
        headers = {
            **p.platform_headers(self.qty, self.message),
            p.HEADER_X_AVAILABLE: str(self.qty),
            p.HEADER_STATUS: self.status,
            p.HEADER_X_MESSAGE: p.encode_header(self.message),
            p.HEADER_CAUSE: self.cause,
            p.HEADER_SOURCE: self.source,
            "Cache-Control": "no-store",
        }
        if self.sku is not None:
            headers[p.HEADER_SKU] = p.encode_header(self.sku, limit=200)
        if self.live is not None:
            headers[p.HEADER_LIVE] = self.live if self.live_cause is None else f"{self.live}; cause={self.live_cause}"
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        line = f"{self.status} {self.qty} ({self.cause}{', ' + self.sku if self.sku else ''})"
        body = f"{line}\n{self.detail}\n" if self.detail else f"{line}\n"
        response = Response(content=body.encode("ascii", "backslashreplace"), status_code=self.status_code,
                            media_type="text/plain")
        response.raw_headers[:0] = p.exact_headers(headers)  # spelled as documented (see protocol.ExactCase)
        return response


def shop_of(settings: AvailabilitySettings) -> ShopPort:
    """The shop behind the port (`SHOP_PLATFORM`, `SHOP_OPTIONS`, `SHOP_TABLE_PREFIX`): the checkout
    gate's freeze reads and, on a MySQL-family platform, the item lookups and the live write-back."""
    return open_shop(settings.shop_dsn.get_secret_value(), settings.shop_platform, **settings.adapter_options())


def mysql_live_shop(settings: AvailabilitySettings) -> MySQLLiveShop:
    """A MySQL-family shop's live lookups: as many threads as `DB_POOL_SIZE` connections, the row
    lock waited for at most half the budget (InnoDB waits whole seconds: 1 s at least)."""
    shop = shop_of(settings)
    if not isinstance(shop, MySQLShop):
        raise TypeError(f"shop_platform {settings.shop_platform!r} is not a MySQL-family platform")
    return MySQLLiveShop(shop, threads=settings.db_pool_size, lock_timeout_seconds=settings.db_budget / 2,
                         io_timeout_seconds=max(settings.db_budget * 4, 2.0))


class Service:
    """The state of one worker process: settings, pool, WMS client, limiter, metrics."""

    def __init__(self, settings: AvailabilitySettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst,
                                   settings.rate_limit_clients)
        self.secret = settings.secret.get_secret_value().encode() if settings.secret else None
        self.networks = tuple(settings.allowed_networks)
        # stocksync's own tables (sku_map, counters, live records) on their own connections; the
        # single-database layout (no STOCKSYNC_DSN, the reference shop only) shares one pool
        self.shop_pool: ConnectionPool | None = None
        self.shop: PostgresLiveShop | MySQLLiveShop
        if settings.shop_platform == "postgres":
            self.shop_pool = self._pool(settings, settings.shop_dsn.get_secret_value())
            self.stocksync_pool = (self._pool(settings, settings.stocksync_conninfo) if settings.separate_databases
                                   else self.shop_pool)
            self.shop = PostgresLiveShop(self.shop_pool.connection)
        else:  # a MySQL-family shop through its adapter, on worker threads (shop/mysql_live.py)
            self.stocksync_pool = self._pool(settings, settings.stocksync_conninfo)
            self.shop = mysql_live_shop(settings)
        self.q_sku = query("availability/select_item_sku").as_string(None)
        self.resolutions = ResolutionCache(settings.sku_cache_ms / 1000, settings.sku_cache_size)
        self.q_stats = query("availability/insert_stats").as_string(None)
        self.live = LiveWriter(settings, self.shop, self.stocksync_pool.connection) if settings.live_mode else None
        # the gate reads the freeze through the shop port, whatever the platform (SHOP_PLATFORM)
        self.gate = checkout_gate.CheckoutGate(shop_of(settings), cache_seconds=settings.freeze_cache_ms / 1000)
        self.wms: WmsClient | None = None
        if settings.live_mode and settings.wms_url and settings.wms_token:
            self.wms = WmsClient(settings.wms_url, settings.wms_token.get_secret_value(), settings.wms_budget,
                                 max_quantity=settings.max_quantity, clock_skew_seconds=settings.clock_skew_seconds)
        self._tasks: set[asyncio.Task[Any]] = set()
        # script requests using this worker's CPU or database now (LoadShedder counts them)
        self.in_flight = 0

    @staticmethod
    def _pool(settings: AvailabilitySettings, conninfo: str) -> ConnectionPool:
        budget_ms = settings.db_budget_ms
        connect_timeout = max(2, math.ceil(settings.db_budget))  # a connect may outlive one request's budget
        return ConnectionPool(
            conninfo, size=settings.db_pool_size, retry_after=settings.db_retry_ms / 1000,
            connect_timeout=connect_timeout,
            connect_kwargs={
                "connect_timeout": connect_timeout,  # libpq's minimum is 2 s
                "application_name": "stocksync-availability",
                "prepare_threshold": 0,
                "options": f"-c statement_timeout={budget_ms} -c lock_timeout={max(1, budget_ms // 2)} "
                           f"-c idle_in_transaction_session_timeout={max(1000, 4 * budget_ms)}",
            })

    @property
    def pools(self) -> tuple[ConnectionPool, ...]:
        """The shop's pool (the reference shop's), and stocksync's when it is another database."""
        if self.shop_pool is None:
            return (self.stocksync_pool,)
        return (self.shop_pool,) if self.stocksync_pool is self.shop_pool else (self.shop_pool, self.stocksync_pool)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.wms is not None:
            await self.wms.start()
        self._spawn(self._warm_up())
        self._spawn(self._flush_loop())
        log.info("availability service ready: %s", self.settings.public())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with suppress(Exception):
            await asyncio.wait_for(self.flush(), 3)
        if self.wms is not None:
            await self.wms.close()
        for pool in self.pools:
            await pool.close()
        if isinstance(self.shop, MySQLLiveShop):
            self.shop.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _warm_up(self) -> None:
        """Open one connection to each database before the first request (a dead database is not
        an error here)."""
        for pool in self.pools:
            with suppress(Exception):
                async with asyncio.timeout(max(self.settings.db_budget, 2.0)):
                    async with pool.connection() as conn:
                        await conn.execute("SELECT 1")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stats_flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Write the counters since the last write (a failed write keeps them for the next)."""
        period = self.metrics.take_pending()
        if period.requests == 0:
            self.metrics.put_back(period)
            return
        try:
            async with asyncio.timeout(max(self.settings.db_budget, 2.0)):
                async with self.stocksync_pool.connection() as conn:
                    await conn.execute(self.q_stats, period.row(self.metrics.instance, datetime.now(UTC)))
            self.metrics.flushes += 1
        except Exception as exc:
            self.metrics.flush_failures += 1
            self.metrics.put_back(period)
            log.warning("could not write the availability counters (kept for the next attempt): %s",
                        getattr(exc, "cause", None) or type(exc).__name__)

    # ------------------------------------------------------------------ requests
    async def inventory(self, request: Request) -> Response:
        started = time.perf_counter()
        client = request.client.host if request.client else "-"
        code = options = None
        try:
            answer, code, options = await self._answer(request, client)
        except Exception:
            log.exception("internal error while answering client=%s", client)
            answer = self.unknown("internal_error", "an internal error; see the service log")
        latency_ms = (time.perf_counter() - started) * 1000
        self.metrics.observe(answer.result, answer.cause, latency_ms, live=answer.live, live_cause=answer.live_cause)
        if log.isEnabledFor(logging.INFO):
            log.info("answer client=%s http=%d status=%s available=%d cause=%s sku=%r code=%s options=%s source=%s "
                     "live=%s ms=%.2f", client, answer.status_code, answer.status, answer.qty, answer.cause,
                     answer.sku, logged(code), logged(options), answer.source,
                     answer.live if answer.live_cause is None else f"{answer.live}:{answer.live_cause}", latency_ms)
        return answer.response()

    async def metrics_text(self, request: Request) -> Response:
        client = request.client.host if request.client else "-"
        refused = self._gate(request, client)
        if refused is not None:
            log.info("metrics refused client=%s cause=%s", client, refused.cause)
            return refused.response()
        body = self.metrics.prometheus(live_mode=self.settings.live_mode, db_down=any(pool.down for pool in self.pools),
                                       in_flight=self.in_flight, max_in_flight=self.settings.max_in_flight)
        body += self.gate.prometheus()
        return Response(content=body, media_type="text/plain; version=0.0.4", headers={"Cache-Control": "no-store"})

    async def checkout_freeze(self, request: Request) -> Response:
        """The web server's checkout gate (checkout_gate.py): open, frozen, or unknown within
        `DB_BUDGET_MS`. IP range and secret as for the script; no rate limit (every checkout of
        the shop comes from the web server's address, and the cache bounds the database work)."""
        client = request.client.host if request.client else "-"
        refused = self._caller_refused(request, client)
        if refused is not None:
            self.gate.count("refused")
            log.warning("checkout gate refused client=%s cause=%s", client, refused.cause)
            return checkout_gate.refused(refused.cause)
        cause = None
        try:
            async with asyncio.timeout(self.settings.db_budget):
                state = await self.gate.state()
        except TimeoutError:
            cause = "db_timeout"
        except ShopUnavailable:
            cause = "db_unavailable"
        except Exception as exc:  # noqa: BLE001 - any failure to read the freeze is "unknown", never a 500
            cause = "db_error"
            log.warning("checkout gate: reading the freeze failed: %s", type(exc).__name__)
        if cause is not None:
            self.gate.count("unknown")
            log.warning("checkout gate answered unknown client=%s cause=%s", client, cause)
            return checkout_gate.unknown(cause)
        self.gate.count("frozen" if state.frozen else "open")
        return checkout_gate.answer(state)

    def _gate(self, request: Request, client: str) -> Answer | None:
        """Rate limit, IP range, secret: a refusal, or None to go on. Never touches the database."""
        allowed, wait = self.limiter.allow(client)
        if not allowed:
            return self.rejected(429, "rate_limited", "too many requests; slow down",
                                 retry_after=max(1, math.ceil(wait)))
        return self._caller_refused(request, client)

    def _caller_refused(self, request: Request, client: str) -> Answer | None:
        """IP range and secret: a refusal, or None to go on."""
        if self.networks and not self._ip_allowed(client):
            return self.rejected(403, "forbidden_ip", "this address may not ask")
        if self.secret is not None:
            given = request.headers.get(p.HEADER_SECRET) or request.query_params.get(p.QUERY_SECRET)
            if not given:
                return self.rejected(403, "no_credentials",
                                     f"send the secret in {p.HEADER_SECRET} or ?{p.QUERY_SECRET}=")
            if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret):
                return self.rejected(403, "wrong_secret", "wrong secret")
        return None

    def _ip_allowed(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    async def _answer(self, request: Request, client: str) -> tuple[Answer, str | None, str | None]:
        refused = self._gate(request, client)
        if refused is not None:
            return refused, None, None
        try:
            item = await self._read_item(request)
            if item.probe:
                return self.probe(), None, None
            try:
                key = options_key(item.options)
            except ValueError as exc:
                raise p.RequestError(400, "bad_options", str(exc)[:120]) from exc
        except p.RequestError as exc:
            return self.rejected(exc.status, exc.cause, exc.detail), None, None
        return await self._lookup(item, key), item.code, key

    async def _read_item(self, request: Request) -> p.Item:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise p.RequestError(400, "bad_form", "Content-Length is not a number")
            if int(declared) > limit:
                raise p.RequestError(413, "body_too_large", f"the body may have at most {limit} bytes")
        codec = p.charset_of(request.headers.get("content-type"))
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.settings.body_timeout_ms / 1000):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise p.RequestError(413, "body_too_large", f"the body may have at most {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError as exc:
            raise p.RequestError(408, "body_timeout", "the body did not arrive in time") from exc
        except ClientDisconnect as exc:
            raise p.RequestError(400, "client_disconnected", "the client went away") from exc
        pairs = p.parse_form(b"".join(chunks), codec=codec, max_fields=self.settings.max_fields,
                             max_length=self.settings.max_value_length)
        return p.read_item(pairs)

    async def _lookup(self, item: p.Item, key: str) -> Answer:
        """The SKU from stocksync's sku_map (or the worker's `ResolutionCache`), then the product and
        the freeze from the shop: one or two round trips within one budget (the databases may be
        apart: no join across)."""
        try:
            async with asyncio.timeout(self.settings.db_budget):
                cached, target = self.resolutions.get(item.code, key)
                if not cached:
                    async with self.stocksync_pool.connection() as conn:
                        row = await (await conn.execute(self.q_sku, {"code": item.code, "options_key": key})).fetchone()
                    target = None if row is None else (str(row[0]), str(row[1]))
                    self.resolutions.put(item.code, key, target)
                if target is None:
                    return self.unknown("unmapped_options",
                                        f"code {item.code!r} has SKU mappings, none for options {key!r}")
                sku, via = target
                found = await self.shop.item(sku)
        except DatabaseUnavailable as exc:  # the reason is in the log (pool), not in the answer
            return self.unknown(exc.cause, "the database is unavailable")
        except LiveShopFailure as exc:
            return self.unknown(exc.cause, "the shop database did not answer as expected")
        except TimeoutError:
            return self.unknown("db_timeout", f"no answer from the database within {self.settings.db_budget_ms} ms")
        except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
            return self.unknown("db_timeout", "the database query hit its time limit")
        except psycopg.Error as exc:
            return self.unknown("db_error", type(exc).__name__)
        product = found.sellable
        if product is None:
            if via == "code":
                return self.unknown("unknown_sku", f"no product {sku!r} in the shop and no mapping for the code",
                                    sku=sku)
            return self.unknown("mapped_sku_missing", f"the mapping points at {sku!r}, not in the shop", sku=sku)
        if found.freeze_message is not None:
            return self.unknown("checkout_frozen", "checkout is frozen", sku=sku, message=found.freeze_message)
        if not product.enabled:
            return self.stock_answer(0, sku, item.quantity, cause="disabled")
        qty, seq = product.qty, product.wms_seq
        if qty is None or seq is None:
            return self.stock_answer(0, sku, item.quantity, cause="no_stock_row")
        if self.live is not None:
            return await self._live(item, sku, int(qty), int(seq))
        return self.stock_answer(int(qty), sku, item.quantity)

    async def _live(self, item: p.Item, sku: str, qty: int, seq: int) -> Answer:
        assert self.wms is not None and self.live is not None
        try:
            with self.waiting_elsewhere():
                wms_item = await self.wms.item(sku)
        except WmsError as exc:
            return self.stock_answer(qty, sku, item.quantity, live="fallback", live_cause=exc.cause,
                                     detail=fallback_detail(exc))
        if wms_item.seq <= seq:
            return self.stock_answer(qty, sku, item.quantity, live="current")
        try:
            async with asyncio.timeout(self.settings.db_budget):
                result = await self.live.write_back(wms_item)
        except (DatabaseUnavailable, LiveShopFailure) as exc:
            if isinstance(exc, LiveShopFailure):
                log.warning("live write-back of %s failed: %s", sku, exc)
            return self.stock_answer(qty, sku, item.quantity, live="fallback", live_cause="write_" + exc.cause)
        except (TimeoutError, psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
            return self.stock_answer(qty, sku, item.quantity, live="fallback", live_cause="write_timeout")
        except (psycopg.Error, RuntimeError) as exc:
            log.warning("live write-back of %s failed: %s", sku, exc)
            return self.stock_answer(qty, sku, item.quantity, live="fallback", live_cause="write_error")
        if result is None:
            return self.stock_answer(0, sku, item.quantity, cause="no_stock_row", live="current")
        if not result.written:
            return self.stock_answer(result.qty, sku, item.quantity, live="current")
        return self.stock_answer(result.qty, sku, item.quantity, live="written", source="live",
                                 detail=f"WMS available {wms_item.available} (seq {wms_item.seq}), "
                                        f"{result.adjustment} uncounted, shop was {result.old_qty}")

    @contextmanager
    def waiting_elsewhere(self) -> Iterator[None]:
        """A request waiting on the WMS (at most WMS_BUDGET_MS) uses neither our CPU nor the
        database: it does not count against MAX_IN_FLIGHT meanwhile, so a slow WMS makes live
        answers fall back to the shop's number (as documented), not shed them as overloaded."""
        self.in_flight -= 1
        try:
            yield
        finally:
            self.in_flight += 1

    # ------------------------------------------------------------------ answers
    def stock_answer(self, qty: int, sku: str, requested: int | None, *, cause: str | None = None,
                     source: str = "shop", live: str | None = None, live_cause: str | None = None,
                     detail: str = "") -> Answer:
        s = self.settings
        if qty > 0:
            limited = requested is not None and qty < requested
            template = s.message_limited if limited else s.message_available
            return Answer(200, "available", qty, cause or ("limited" if limited else "in_stock"),
                          p.shopper_message(template, qty, requested), sku=sku, source=source, live=live,
                          live_cause=live_cause, detail=detail, requested=requested)
        return Answer(200, "unavailable", 0, cause or "out_of_stock",
                      p.shopper_message(s.message_unavailable, 0, requested), sku=sku, source=source, live=live,
                      live_cause=live_cause, detail=detail, requested=requested)

    def unknown(self, cause: str, detail: str, *, sku: str | None = None, message: str | None = None) -> Answer:
        return Answer(200, "unknown", p.UNKNOWN, cause, message or self.settings.message_unknown, sku=sku,
                      detail=detail)

    def rejected(self, status_code: int, cause: str, detail: str, *, retry_after: int | None = None) -> Answer:
        return Answer(status_code, "rejected", p.UNKNOWN, cause, self.settings.message_unknown, detail=detail,
                      retry_after=retry_after)

    def probe(self) -> Answer:
        return Answer(200, "probe", p.UNKNOWN, "probe", "Inventory script ready.",
                      detail=f"the platform's validation request (.code={p.PROBE_CODE}), answered without the "
                             "database")


class LoadShedder:
    """At most `limit` script requests in flight per worker; one more gets unknown at once.

    Under saturation a request that waits for the database behind the others is answered late,
    and the platform waits with the shopper; an immediate unknown lets it apply the merchant's
    policy for an unreachable script instead. The shed answer is prepared once and sent before
    routing, authentication or reading the body (it reveals nothing and costs almost nothing).
    Everything that is not `POST <path>` passes through uncounted; a live request waiting on the
    WMS is not counted meanwhile (`Service.waiting_elsewhere`). One event loop per worker: a plain
    counter (`Service.in_flight`) is enough.
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        self.path = service.settings.path
        self.limit = service.settings.max_in_flight
        answer = Answer(200, "unknown", p.UNKNOWN, SHED_CAUSE, service.settings.message_unknown,
                        detail=f"more than {self.limit} requests in flight in this worker (MAX_IN_FLIGHT)")
        rendered = answer.response()
        # sent before the app (and its nosniff middleware) runs, so it carries the header itself
        headers = [*rendered.raw_headers, (b"x-content-type-options", b"nosniff")]
        self._start = {"type": "http.response.start", "status": rendered.status_code, "headers": headers}
        self._body = {"type": "http.response.body", "body": rendered.body}
        self._shed_since_log = 0
        self._logged_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        service = self.service
        if service.in_flight >= self.limit:
            started = time.perf_counter()
            await send(self._start)
            await send(self._body)
            service.metrics.observe("unknown", SHED_CAUSE, (time.perf_counter() - started) * 1000)
            self._note_shed()
            return
        service.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            service.in_flight -= 1

    def _note_shed(self) -> None:
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= 1.0:
            log.warning("overloaded: answered %d request(s) unknown at once since the last report; %d in flight "
                        "(MAX_IN_FLIGHT %d)", self._shed_since_log, self.service.in_flight, self.limit)
            self._shed_since_log = 0
            self._logged_at = now


def create_app(settings: AvailabilitySettings) -> LoadShedder:
    """The FastAPI app behind its load shedder (`.app`; the service is `.service`)."""
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    # no redirect from `<path>/` to `<path>`: it would send the platform (and the secret in its query
    # string) to a plain-HTTP URL built from the Host header, before any authentication
    app = FastAPI(title="stocksync availability", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
                  redirect_slashes=False)

    @app.exception_handler(StarletteHTTPException)
    async def refused_route(_request: Request, exc: StarletteHTTPException) -> Response:
        """A path or method the service does not answer: the service's refusal (its headers say
        unknown to a platform that reads only them), never the framework's JSON."""
        cause = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "refused")
        response = service.rejected(exc.status_code, cause, f"no such route: {exc.detail}").response()
        for name, value in (exc.headers or {}).items():  # a 405's Allow
            response.headers[name] = value
        return response
    # every answer, whatever route or refusal: a browser must never guess another type for it
    app.add_middleware(SecurityHeadersMiddleware, headers_for=lambda _path: {"X-Content-Type-Options": "nosniff"})

    @app.post(settings.path)
    async def inventory(request: Request) -> Response:
        return await service.inventory(request)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return await service.metrics_text(request)

    @app.get(CHECKOUT_FREEZE_PATH)
    async def checkout_freeze(request: Request) -> Response:
        return await service.checkout_freeze(request)

    @app.get("/health")
    async def health() -> Response:
        return Response(content="ok\n", media_type="text/plain")

    return LoadShedder(app, service)


def create_app_from_env() -> LoadShedder:
    """The uvicorn factory (each worker process reads the same environment)."""
    return create_app(load())
