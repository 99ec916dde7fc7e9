"""Stage one WMS snapshot from any `WmsSource` into a raw staging table.

Each batch (an HTTP page, a file chunk) is streamed straight into an UNLOGGED table with
COPY, so memory stays at one batch whatever the catalog size. Values are stored as text
exactly as received (made safe for PostgreSQL): judging them is validation's job, and a
malformed value must reach it rather than break the load. What extraction itself refuses,
before any row is staged: a header whose time stamps are not sane, a walk that mixes
snapshots or breaks its bounds (see `sources/base.py`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg

from include.stocksync.domain.contract import raw_column_definitions, raw_columns
from include.stocksync.store.db import query, run_key
from include.stocksync.wms.sources.base import (
    SnapshotLimits,
    WalkBounds,
    WmsContractError,
    WmsError,
    WmsSource,
    WmsUnavailable,
    check_header,
    parse_timestamp,
    walk_header,
)
from include.stocksync.wms.sources.http import WmsClient

__all__ = ["ExtractResult", "WmsClient", "WmsContractError", "WmsError", "WmsUnavailable",
           "create_raw_table", "extract_to_staging", "parse_timestamp", "raw_table"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractResult:
    staging_table: str
    snapshot_id: str
    snapshot_taken_at: datetime | None
    orders_counted_until: datetime | None
    request_started_at: datetime
    pages: int
    rows: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "staging_table": self.staging_table,
            "snapshot_id": self.snapshot_id,
            "snapshot_taken_at": _iso(self.snapshot_taken_at),
            "orders_counted_until": _iso(self.orders_counted_until),
            "request_started_at": _iso(self.request_started_at),
            "pages": self.pages,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def raw_table(run_id: str) -> str:
    return f"raw_{run_key(run_id)}"


def create_raw_table(conn: psycopg.Connection, table: str) -> None:
    """(Re)create the raw staging table `stocksync.<table>` with the contract's columns."""
    conn.execute(query("stocksync/create_raw_counts", raw=table, fields=raw_column_definitions()))


def extract_to_staging(conn: psycopg.Connection, source: WmsSource, run_id: str, *,
                       bounds: WalkBounds | None = None, limits: SnapshotLimits | None = None) -> ExtractResult:
    """Walk the source's snapshot into `stocksync.raw_<run key>` (the caller's step commits it).

    The table is rebuilt on every call, so a retried or re-run extraction never mixes walks.
    Without `bounds`, a generous default (10,000 batches, one hour) still ends any walk."""
    started = time.perf_counter()
    request_started_at = datetime.now(timezone.utc)
    bounds = bounds or WalkBounds(10_000, time.monotonic() + 3600)
    limits = limits or SnapshotLimits()
    table = raw_table(run_id)
    create_raw_table(conn, table)
    copy_sql = query("stocksync/copy_raw_counts", raw=table, columns=raw_columns())
    batches = rows = 0
    first = None
    checked = None
    # one COPY for the whole walk: the server parses batch n while the source decodes
    # batch n+1, instead of a statement, and a wait for its end, per batch; a failed check or walk
    # aborts it, and the step rolls the table back
    with conn.cursor().copy(copy_sql) as copy:
        for batch in source.batches(bounds):
            if first is None or checked is None:
                first = batch.header
                checked = check_header(first, limits, request_started_at)
            else:
                checked = walk_header(checked, first, batch.header, batch.where, limits)
            if batch.text is not None:  # rendered by the source in one piece
                copy.write(batch.text)
                rows += batch.count or 0
            else:
                for row in batch.rows:
                    copy.write_row(row)
                    rows += 1
            batches += 1
    if checked is None:
        raise WmsContractError("the WMS source yielded no batch at all")
    result = ExtractResult(
        staging_table=table,
        snapshot_id=checked.snapshot_id,
        snapshot_taken_at=checked.snapshot_taken_at,
        orders_counted_until=checked.orders_counted_until,
        request_started_at=request_started_at,
        pages=batches,
        rows=rows,
        seconds=time.perf_counter() - started,
    )
    log.info("extracted %d rows in %d batches from snapshot %s in %.2fs", rows, batches, result.snapshot_id,
             result.seconds)
    return result
