"""A stock file the WMS drops (CSV or JSON Lines, plain or gzip) with its manifest, as a `WmsSource`.

Many warehouse systems export stock as a nightly file instead of serving an API. The file is
read once, as a stream: the compressed bytes are hashed as they are read, decompressed block by
block, decoded as strict UTF-8 and parsed into rows that go to `extract.py` in batches of
`chunk_rows`, so memory holds one block and one batch whatever the file's size. The manifest
next to the file says what the file claims (snapshot id and times, row count, SHA-256); the
header checks of `extract.py` judge the times, and this module refuses a file that is not what its
manifest says (checksum, row count), cannot be read to its end (a truncated or corrupt gzip), is
not UTF-8, or whose CSV header does not map onto the WMS contract. Every refusal is a
`FileRefused` (permanent: the same bytes give the same answer) naming the file and, where there
is one, the line and byte offset.

Values are staged as text exactly as read, like the HTTP source's: judging them is validation's
job. An empty CSV cell is staged as NULL (CSV cannot tell an empty text from a missing value).

Non-UTF-8 input is refused, not staged: the WMS contract is UTF-8, and bytes in another
encoding would reach the shop as mangled SKUs that validation could only call unknown. The
refusal names the byte offset (in the decompressed data) and the line, so the exporter can be
fixed. A UTF-8 byte order mark at the start is accepted and skipped.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from typing import Any, Protocol

import orjson

from include.stocksync.config.files import MAX_MANIFEST_BYTES, FileSourceSettings
from include.stocksync.domain.contract import FIELD_NAMES, FIELD_SET, RAW_TEXT_MAX_LENGTH
from include.stocksync.wms.sources.base import (
    Batch,
    SnapshotHeader,
    WalkBounds,
    WmsContractError,
    _show,
    item_rows,
    safe_text,
)

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20        # what is read and decoded at a time
MAX_LINE_BYTES = 1 << 20     # one line (a CSV record or a JSON Lines item) may not be longer
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_KEYS = ("snapshot_id", "snapshot_taken_at", "orders_counted_until", "row_count", "sha256")
_END = object()


class FileRefused(WmsContractError):
    """The dropped file or its manifest breaks the file-drop contract. Retrying reads the same
    bytes, so the run fails at once; the file moves to `rejected/<date>/` with this message as its
    reason (`include/stocksync/sync/file_drop.py`)."""


class ReadablePath(Protocol):
    """What the source needs of a path: its name and a binary stream (an ObjectStoragePath)."""

    @property
    def name(self) -> str: ...

    def open(self, mode: str = "r", **kwargs: Any) -> Any: ...


# ----------------------------------------------------------------------------- manifest

@dataclass(frozen=True)
class Manifest:
    """What the exporter claims about a data file. The time stamps stay as received: `check_header`
    judges them like an HTTP page's header."""

    name: str
    data_file: str
    snapshot_id: Any
    snapshot_taken_at: Any
    orders_counted_until: Any
    row_count: int
    sha256: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def header(self) -> SnapshotHeader:
        return SnapshotHeader(self.snapshot_id, self.snapshot_taken_at, self.orders_counted_until)

    def as_json(self) -> str:
        return orjson.dumps(self.raw, default=str).decode()


def parse_manifest(content: bytes, *, name: str, data_file: str) -> Manifest:
    """A manifest's bytes as a `Manifest`, or `FileRefused` naming what is wrong with it."""
    if len(content) > MAX_MANIFEST_BYTES:
        raise FileRefused(f"manifest {name} is more than {MAX_MANIFEST_BYTES} bytes: not a manifest")
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise FileRefused(f"manifest {name} is not JSON (UTF-8): {exc}") from exc
    if not isinstance(body, dict):
        raise FileRefused(f"manifest {name} must be a JSON object; got a JSON {type(body).__name__}")
    missing = [key for key in MANIFEST_KEYS if key not in body]
    if missing:
        raise FileRefused(f"manifest {name} lacks {', '.join(missing)}: a manifest must carry "
                          f"{', '.join(MANIFEST_KEYS)} (orders_counted_until may be null)")
    named = body.get("data_file")
    if named is not None and named != data_file:
        raise FileRefused(f"manifest {name} describes data file {_show(named)}, not {data_file!r}: "
                          "the manifest belongs to another file")
    row_count = body["row_count"]
    if type(row_count) is not int or row_count < 0:
        raise FileRefused(f"manifest {name}: row_count must be a whole number >= 0; got {_show(row_count)}")
    sha256 = body["sha256"]
    if not isinstance(sha256, str) or not SHA256_PATTERN.match(sha256.lower()):
        raise FileRefused(f"manifest {name}: sha256 must be the data file's SHA-256 as 64 hex digits; "
                          f"got {_show(sha256)}")
    return Manifest(name=name, data_file=data_file, snapshot_id=body["snapshot_id"],
                    snapshot_taken_at=body["snapshot_taken_at"], orders_counted_until=body["orders_counted_until"],
                    row_count=row_count, sha256=sha256.lower(), raw=body)


def read_manifest(path: ReadablePath, *, data_file: str) -> Manifest:
    """Read (at most `MAX_MANIFEST_BYTES` + 1 bytes of) the manifest at `path`."""
    with path.open("rb") as fh:
        content = fh.read(MAX_MANIFEST_BYTES + 1)
    return parse_manifest(content, name=path.name, data_file=data_file)


# ----------------------------------------------------------------------------- streaming

class _HashingReader(io.RawIOBase):
    """The data file's bytes as they are read, hashed and counted (the checksum needs one pass)."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._fh.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.bytes += n
        return n

    def drain(self) -> None:
        """Hash what is left after the data ended (trailing bytes count in the checksum)."""
        while chunk := self._fh.read(BLOCK_BYTES):
            self.sha256.update(chunk)
            self.bytes += len(chunk)


@dataclass
class FileStats:
    bytes: int = 0                # compressed (as stored): what the checksum covers
    decompressed_bytes: int = 0
    rows: int = 0
    sha256: str | None = None
    compressed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "decompressed_bytes": self.decompressed_bytes, "rows": self.rows,
                "sha256": self.sha256, "compressed": self.compressed}


class FileSource:
    """One dropped data file and its manifest as a `WmsSource`. See the module docstring.

    The walk's bounds apply as to the HTTP source: at most `bounds.max_batches` batches of
    `chunk_rows` rows (the enabled catalog decides), no batch larger than `bounds.max_batch_bytes`
    of decompressed text. The deadline and the bounds on decompressed bytes and lines (blank lines
    included) are checked inside the read, block by block: a small gzip that expands to gigabytes
    of blank lines is refused at its bound, not read to the task's timeout."""

    def __init__(self, data: ReadablePath, manifest: Manifest, settings: FileSourceSettings) -> None:
        self.data = data
        self.manifest = manifest
        self.name = data.name
        self.format = settings.format
        self.delimiter = settings.delimiter
        self.header_map = dict(settings.header_map)
        self.compression = settings.compression
        self.chunk_rows = settings.chunk_rows
        self.stats = FileStats()
        # CSV fast path: a block without NUL and without lines longer than RAW_TEXT_MAX_LENGTH
        # needs no `safe_text`; rows touching another block take the careful path
        self._pending_dirty = False
        self._block_dirty = False
        self._bounds: WalkBounds | None = None

    # -- the walk -------------------------------------------------------------------------------
    def batches(self, bounds: WalkBounds) -> Iterator[Batch]:
        self.stats = FileStats()
        self._bounds = bounds
        with self.data.open("rb") as fh:
            hashing = _HashingReader(fh)
            stream = self._decompressed(hashing)
            records = self._csv_records(stream) if self.format == "csv" else self._jsonl_records(stream)
            first = next(records, _END)  # header problems surface before the first batch
            batch_no = 0
            while True:
                where = f"{self.name} chunk {batch_no + 1} (from data row {self.stats.rows})"
                bounds.check(batch_no, where)
                before = self.stats.decompressed_bytes
                chunk: Iterable[Any] = () if first is _END else chain((first,), islice(records, self.chunk_rows - 1))
                yield Batch(self.manifest.header, self._copy_rows(batch_no, chunk), where)
                if self.stats.decompressed_bytes - before > bounds.max_batch_bytes:
                    raise FileRefused(f"{where} is more than {bounds.max_batch_bytes} bytes of text for "
                                      f"{self.chunk_rows} rows (config max_page_bytes, file_source.chunk_rows)")
                batch_no += 1
                first = _END if first is _END else next(records, _END)
                if first is _END:
                    break
            hashing.drain()
            self.stats.bytes = hashing.bytes
            self.stats.sha256 = hashing.sha256.hexdigest()
        self._verify()

    def _verify(self) -> None:
        """What the manifest claims, against what was read: checksum first (another file, or one
        changed after its manifest was written), then the row count (an incomplete export)."""
        if self.stats.sha256 != self.manifest.sha256:
            raise FileRefused(
                f"checksum mismatch: {self.name} ({self.stats.bytes} bytes) has SHA-256 {self.stats.sha256}, its "
                f"manifest {self.manifest.name} claims {self.manifest.sha256}: the file was changed or cut after "
                "its manifest was written, or the manifest belongs to another file")
        if self.stats.rows != self.manifest.row_count:
            raise FileRefused(
                f"row count mismatch: {self.name} has {self.stats.rows} data rows, its manifest "
                f"{self.manifest.name} claims {self.manifest.row_count}: the export is incomplete or its "
                "manifest counts something else")

    def _copy_rows(self, batch_no: int, records: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        if self.format == "jsonl":
            return item_rows(batch_no, records)  # type: ignore[arg-type]  # any iterable of items
        prefix = (batch_no,)
        return (prefix + values for values in records)

    # -- bytes -> text ----------------------------------------------------------------------------
    def _decompressed(self, hashing: _HashingReader) -> Any:
        buffered = io.BufferedReader(hashing, buffer_size=BLOCK_BYTES)
        gzipped = self.compression == "gzip" or (self.compression == "auto" and buffered.peek(2)[:2] == GZIP_MAGIC)
        self.stats.compressed = gzipped
        return gzip.GzipFile(fileobj=buffered, mode="rb") if gzipped else buffered

    def _read(self, stream: Any) -> bytes:
        try:
            return stream.read(BLOCK_BYTES)
        except EOFError as exc:
            raise FileRefused(f"truncated gzip: {self.name} ends before its compressed data does (after "
                              f"{self.stats.decompressed_bytes} bytes of text): the upload or the export was cut "
                              f"short ({exc})") from exc
        except (gzip.BadGzipFile, zlib.error) as exc:  # a store's read error (OSError) stays transient
            raise FileRefused(f"{self.name} is not a readable gzip file (after {self.stats.decompressed_bytes} "
                              f"bytes of text): {exc} (config file_source.compression)") from exc

    def _text_blocks(self, stream: Any) -> Iterator[str]:
        """Decoded text in blocks of whole lines, strict UTF-8; a bad byte names its offset and line."""
        carry = b""
        offset = 0  # decompressed offset of `carry`'s first byte
        line_no = 1
        start = True
        while True:
            data = self._read(stream)
            if start and data:
                start = False
                if data.startswith(UTF8_BOM):
                    data = data[len(UTF8_BOM):]
                    offset = len(UTF8_BOM)
            if not data:
                break
            self.stats.decompressed_bytes += len(data)
            if self._bounds is not None:  # bytes, lines (blank ones too) and the deadline, block by block
                newlines = data.count(b"\n")
                self._bounds.read(len(data), newlines, f"{self.name} line {line_no + newlines} (byte "
                                  f"{self.stats.decompressed_bytes} of "
                                  f"{'the decompressed data' if self.stats.compressed else 'the file'})")
            buffer = carry + data if carry else data
            cut = buffer.rfind(b"\n") + 1
            if cut == 0:
                carry = buffer
            else:
                block, carry = buffer[:cut], buffer[cut:]
                yield self._decode(block, offset, line_no)
                offset += len(block)
                line_no += block.count(b"\n")
            if len(carry) > MAX_LINE_BYTES:
                raise FileRefused(f"{self.name}: line {line_no} is longer than {MAX_LINE_BYTES} bytes: not a stock "
                                  "row (a broken export, or a file in another format)")
        if carry:
            yield self._decode(carry, offset, line_no)

    def _decode(self, block: bytes, offset: int, line_no: int) -> str:
        try:
            return block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = line_no + block.count(b"\n", 0, exc.start)
            line_start = block.rfind(b"\n", 0, exc.start) + 1
            where = "decompressed data" if self.stats.compressed else "file"
            raise FileRefused(
                f"{self.name} is not UTF-8: byte offset {offset + exc.start} of the {where} (line {line}, byte "
                f"{exc.start - line_start + 1} of the line) holds {block[exc.start:exc.end]!r}, which is not valid "
                "UTF-8; the WMS contract is UTF-8: export the file as UTF-8") from None

    # -- CSV --------------------------------------------------------------------------------------
    def _lines(self, stream: Any) -> Iterator[str]:
        for text in self._text_blocks(stream):
            lines = io.StringIO(text, newline="").readlines()
            self._block_dirty = "\x00" in text or max(map(len, lines), default=0) > RAW_TEXT_MAX_LENGTH
            if self._block_dirty:
                self._pending_dirty = True
            yield from lines

    def _csv_records(self, stream: Any) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples of the contract's fields (text or None) plus missing and extra keys."""
        reader = csv.reader(self._lines(stream), delimiter=self.delimiter, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise FileRefused(f"{self.name} is empty: a CSV stock file starts with a header line naming "
                                  f"its columns ({', '.join(FIELD_NAMES)})")
            positions = self._columns([name.strip() for name in header])
            width = len(header)
            getter = itemgetter(*positions) if len(positions) > 1 else (lambda row: (row[positions[0]],))
            tail = (None, None)
            stats = self.stats
            for row in reader:
                if len(row) == width:
                    values = getter(row)
                    if self._pending_dirty:
                        values = tuple(safe_text(v) if v else None for v in values)
                        self._pending_dirty = self._block_dirty
                    elif "" in values:
                        values = tuple(v or None for v in values)
                    stats.rows += 1
                    yield values + tail
                elif row:
                    stats.rows += 1
                    yield self._odd_row(row, positions, width)
                # an empty line is no row (a trailing newline, a blank line between rows)
        except csv.Error as exc:
            raise FileRefused(f"{self.name}: line {reader.line_num} is not valid CSV: {exc} "
                              f"(config file_source.delimiter {self.delimiter!r})") from exc

    def _columns(self, header: list[str]) -> list[int]:
        """Each contract field's column in the header (through `header_map`), or a refusal naming
        the columns that are missing, doubled or unmapped."""
        found: dict[str, int] = {}
        doubled: list[str] = []
        unmapped: list[str] = []
        for position, name in enumerate(header):
            target = self.header_map.get(name, name if name in FIELD_SET else None)
            if target == "":
                continue  # dropped on purpose
            if target is None:
                unmapped.append(name)
            elif target in found:
                doubled.append(target)
            else:
                found[target] = position
        missing = [name for name in FIELD_NAMES if name not in found]
        problems = []
        if missing:
            problems.append(f"no column for {', '.join(missing)}")
        if doubled:
            problems.append(f"several columns for {', '.join(sorted(set(doubled)))}")
        if unmapped:
            problems.append(f"unmapped column(s) {', '.join(_show(safe_text(n), 60) for n in unmapped[:10])} "
                            "(map each to a contract field, or to '' to drop it)")
        if problems:
            shown = _show([safe_text(n) for n in header[:30]], 400)
            raise FileRefused(f"{self.name}: the header does not map onto the WMS contract: {'; '.join(problems)}. "
                              f"Header: {shown}; config file_source.header_map {self.header_map!r}")
        return [found[name] for name in FIELD_NAMES]

    @staticmethod
    def _odd_row(row: list[str], positions: list[int], width: int) -> tuple[Any, ...]:
        """A row with more or fewer cells than the header: what is there, and what is missing or
        beyond, for validation to judge (as an HTTP item with missing or extra keys)."""
        values = tuple(safe_text(row[p]) if p < len(row) and row[p] else None for p in positions)
        missing = ",".join(name for name, p in zip(FIELD_NAMES, positions, strict=True) if p >= len(row)) or None
        extra = None
        if len(row) > width:
            extra = safe_text(",".join(f"column {n}" for n in range(width + 1, min(len(row), width + 20) + 1)))
        return (*values, missing, extra)

    # -- JSON Lines ---------------------------------------------------------------------------------
    def _jsonl_records(self, stream: Any) -> Iterator[Any]:
        """One item per non-empty line; keys renamed through `header_map`. A line that is not JSON
        refuses the file (as a page that is not JSON does); what the items hold is validation's."""
        rename = self.header_map
        line_no = 0
        stats = self.stats
        for text in self._text_blocks(stream):
            lines = text.split("\n")
            if text.endswith("\n"):
                lines.pop()
            for line in lines:
                line_no += 1
                if not line or line.isspace():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError:
                    # orjson refuses NaN/Infinity and lone surrogates; the stdlib keeps them so that
                    # validation names the value instead of the file failing as a whole
                    try:
                        item = json.loads(line)
                    except (ValueError, RecursionError) as exc:
                        raise FileRefused(f"{self.name}: line {line_no} is not JSON: {exc}") from None
                if rename and type(item) is dict:
                    item = renamed(item, rename)
                stats.rows += 1
                yield item


def renamed(item: dict[str, Any], rename: dict[str, str]) -> dict[str, Any]:
    """A JSON Lines item's keys through `header_map` (a key mapped to "" is dropped). Two keys that
    land on one field (a mapped key and the field's own name, or two mapped keys) never silently
    keep one value: the first keeps the field, the second its own name marked as a second value, a
    key beyond the contract that validation judges like any other (as a CSV header with two columns
    for one field is refused)."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        target = rename.get(key, key)
        if target == "":
            continue
        if target in out:
            target = f"{key} (a second value for {target})"
        out[target] = value
    return out
