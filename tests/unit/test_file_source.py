"""The file-drop WMS source (`include/stocksync/wms/sources/file.py`) on real files and the real PostgreSQL.

Each test writes a stock file and its manifest into a temporary folder, reads it through an
`ObjectStoragePath` (`file://`), and stages it with `extract.extract_to_staging`, the path every
source takes. Refusals are checked for their reason and for leaving nothing staged.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devstack.file_export import sha256_of, write_manifest
from include.stocksync.config.files import FileSourceSettings
from include.stocksync.domain.contract import RAW_TEXT_MAX_LENGTH
from include.stocksync.domain.errors import is_permanent
from include.stocksync.store.db import connect
from include.stocksync.sync.extract import ExtractResult, extract_to_staging, raw_table
from include.stocksync.sync.file_drop import drop_folder, find_ready, list_drops
from include.stocksync.wms.sources.base import WalkBounds, WmsContractError
from include.stocksync.wms.sources.file import FileRefused, FileSource, read_manifest

# the header a WMS export carries, as docs/file-drop-source.md names the contract's fields
FIELD_NAMES = ("sku", "on_hand", "non_usable", "allocated", "available", "seq")

COLUMNS = "page, sku, on_hand, non_usable, allocated, available, seq, missing_keys, extra_keys"


def stock_rows(n: int, start: int = 1) -> list[list[Any]]:
    rows = []
    for i in range(start, start + n):
        on_hand, non_usable, allocated = 100 + i % 50, i % 3, i % 7
        rows.append([f"SKU-{i:07d}", on_hand, non_usable, allocated, on_hand - non_usable - allocated, 1000 + i])
    return rows


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ",",
              newline: str = "\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def jsonl_bytes(items: Sequence[Any]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode("utf-8")


def now_iso(delta: timedelta = timedelta()) -> str:
    return (datetime.now(timezone.utc) + delta).isoformat()


def drop(folder: Path, name: str, content: bytes, *, gz: bool, rows: int | None, **manifest: Any) -> Path:
    """Write a data file (gzip when `gz`) and its manifest; manifest fields can be overridden."""
    path = folder / name
    path.write_bytes(gzip.compress(content, mtime=0) if gz else content)
    fields = {"snapshot_id": f"snap-{uuid.uuid4().hex[:8]}", "snapshot_taken_at": now_iso(timedelta(minutes=-5)),
              "orders_counted_until": now_iso(timedelta(minutes=-5)), "row_count": rows}
    fields.update(manifest)
    write_manifest(path, **fields)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture
def run_id(shop_dsn: str) -> Iterator[str]:
    rid = f"test-file-{uuid.uuid4().hex[:8]}"
    yield rid
    with connect(shop_dsn) as conn:
        conn.execute(f'DROP TABLE IF EXISTS stocksync."{raw_table(rid)}"')
        conn.commit()


def source_for(folder: Path, name: str, **settings: Any) -> FileSource:
    fs = FileSourceSettings(location=folder.as_uri(), **settings)
    where = drop_folder(fs.location)
    manifest = read_manifest(where / f"{name}{fs.manifest_suffix}", data_file=name)
    return FileSource(where / name, manifest, fs)


def stage(dsn: str, run_id: str, source: FileSource, bounds: WalkBounds | None = None
          ) -> tuple[ExtractResult, list[tuple[Any, ...]]]:
    with connect(dsn) as conn:
        result = extract_to_staging(conn, source, run_id, bounds=bounds)
        rows = conn.execute(f'SELECT {COLUMNS} FROM stocksync."{result.staging_table}" ORDER BY row_no').fetchall()
        conn.commit()
    return result, rows


def refused(dsn: str, run_id: str, source: FileSource, error: type[Exception] = FileRefused,
            match: str | None = None) -> str:
    """The refusal's message; the staging table the walk started is gone with its transaction."""
    with connect(dsn) as conn:
        with pytest.raises(error, match=match) as caught:
            extract_to_staging(conn, source, run_id)
        conn.rollback()
        exists = conn.execute("SELECT to_regclass(%s)", (f'stocksync."{raw_table(run_id)}"',)).fetchone()
    assert exists == (None,), "a refused file left rows staged"
    return str(caught.value)


def as_text(rows: Sequence[Sequence[Any]], page: int = 0) -> list[tuple[Any, ...]]:
    return [(page, *(str(v) for v in row), None, None) for row in rows]


# ----------------------------------------------------------------------------- reading

def test_gzip_csv_is_staged_as_text_in_chunks(shop_dsn: str, folder: Path, run_id: str) -> None:
    rows = stock_rows(2500)
    path = drop(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, rows), gz=True, rows=2500)
    source = source_for(folder, "stock.csv.gz", chunk_rows=1000)

    result, staged = stage(shop_dsn, run_id, source)

    assert result.rows == 2500 and result.pages == 3  # 1000 + 1000 + 500: one COPY batch per chunk
    assert [r[1:] for r in staged] == [r[1:] for r in as_text(rows)]
    assert [r[0] for r in staged] == [0] * 1000 + [1] * 1000 + [2] * 500
    assert source.stats.compressed and source.stats.sha256 == sha256_of(path)
    assert source.stats.bytes == path.stat().st_size
    assert result.snapshot_id == source.manifest.snapshot_id


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_json_lines_items_are_judged_like_http_items(shop_dsn: str, folder: Path, run_id: str, gz: bool) -> None:
    good = [dict(zip(FIELD_NAMES, row, strict=True)) for row in stock_rows(3)]
    odd_type = {**good[0], "sku": "SKU-0000099", "available": "5"}       # a string where a number belongs
    extra = {**good[1], "sku": "SKU-0000098", "colour": "red"}            # a key beyond the contract
    missing = {k: v for k, v in good[2].items() if k != "seq"} | {"sku": "SKU-0000097"}
    name = "stock.jsonl.gz" if gz else "stock.jsonl"
    drop(folder, name, jsonl_bytes([*good, odd_type, extra, missing]) + b"\n", gz=gz, rows=6)

    _, staged = stage(shop_dsn, run_id, source_for(folder, name, format="jsonl"))

    assert staged[:3] == as_text(stock_rows(3))
    assert staged[3][1] == "SKU-0000099" and staged[3][5] == '"5"'  # kept quoted: the integer check names it
    assert staged[4][1] == "SKU-0000098" and staged[4][-1] == "colour"
    assert staged[5][1] == "SKU-0000097" and staged[5][6] is None and staged[5][-2] == "seq"


@pytest.mark.parametrize("field", ["available", "sku"])
def test_a_json_lines_item_with_two_keys_for_one_field_keeps_neither_silently(shop_dsn: str, folder: Path,
                                                                              run_id: str, field: str) -> None:
    """`header_map` {"Their name": field}; one item carries both its mapped key and the contract's own
    name with another value. The first keeps the field, the second is staged as a key beyond the
    contract (a CSV header with two columns for one field is refused): validation sees it."""
    theirs = {"available": "Qty", "sku": "Item No"}[field]
    good = [dict(zip(FIELD_NAMES, row, strict=True)) for row in stock_rows(3)]
    items = [{(theirs if k == field else k): v for k, v in item.items()} for item in good]
    second = "SKU-0000009" if field == "sku" else items[2][theirs] + 500
    items[2] = {**items[2], field: second}
    drop(folder, "stock.jsonl", jsonl_bytes(items), gz=False, rows=3)

    _, staged = stage(shop_dsn, run_id, source_for(folder, "stock.jsonl", format="jsonl",
                                                   header_map={theirs: field}))

    assert staged[:2] == as_text(stock_rows(2))
    assert staged[2][:-1] == as_text(stock_rows(3))[2][:-1]  # the first value: the mapped key's
    assert staged[2][-1] == f"{field} (a second value for {field})"


def test_csv_header_names_are_mapped_to_contract_fields(shop_dsn: str, folder: Path, run_id: str) -> None:
    """A WMS with its own column names, order, delimiter and an extra column dropped on purpose;
    a quoted cell holding the delimiter and a line break does not split the row."""
    header = ["Item No", "Free", "On Hand", "Damaged", "Reserved", "Version", "Description"]
    rows = [[r[0], r[4], r[1], r[2], r[3], r[5], f"Product; {r[0]}\nsecond line"] for r in stock_rows(40)]
    drop(folder, "export.csv", csv_bytes(header, rows, delimiter=";"), gz=False, rows=40)
    header_map = {"Item No": "sku", "Free": "available", "On Hand": "on_hand", "Damaged": "non_usable",
                  "Reserved": "allocated", "Version": "seq", "Description": ""}

    _, staged = stage(shop_dsn, run_id, source_for(folder, "export.csv", delimiter=";", header_map=header_map))

    assert staged == as_text(stock_rows(40))


@pytest.mark.parametrize(("header", "header_map", "named"), [
    (["sku", "on_hand", "non_usable", "allocated", "available", "seq", "Description"], {},
     "unmapped column(s) 'Description'"),
    (["sku", "on_hand", "non_usable", "allocated", "available"], {}, "no column for seq"),
    (["sku", "Qty", "on_hand", "non_usable", "allocated", "available", "seq"], {"Qty": "on_hand"},
     "several columns for on_hand"),
], ids=["unmapped", "missing", "doubled"])
def test_a_header_that_does_not_map_is_refused(shop_dsn: str, folder: Path, run_id: str, header: list[str],
                                               header_map: dict[str, str], named: str) -> None:
    drop(folder, "stock.csv", csv_bytes(header, [["SKU-0000001", 1, 0, 0, 1, 1, 1][: len(header)]]), gz=False,
         rows=1)
    message = refused(shop_dsn, run_id, source_for(folder, "stock.csv", header_map=header_map))
    assert "the header does not map onto the WMS contract" in message and named in message


def test_bom_crlf_and_blank_lines_are_accepted(shop_dsn: str, folder: Path, run_id: str) -> None:
    content = b"\xef\xbb\xbf" + csv_bytes(FIELD_NAMES, stock_rows(5), newline="\r\n") + b"\r\n\r\n"
    drop(folder, "stock.csv", content, gz=False, rows=5)
    _, staged = stage(shop_dsn, run_id, source_for(folder, "stock.csv"))
    assert staged == as_text(stock_rows(5))


def test_unsafe_text_and_ragged_rows_reach_validation(shop_dsn: str, folder: Path, run_id: str) -> None:
    """What PostgreSQL cannot hold is escaped, what is too long is cut, rows with too few or too
    many cells are staged with their missing and extra columns: validation judges them."""
    long_sku = "L" * (RAW_TEXT_MAX_LENGTH + 500)
    content = csv_bytes(FIELD_NAMES, [
        ["SKU-\x00NUL", 1, 0, 0, 1, 7], [long_sku, 1, 0, 0, 1, 8], ["SKU-0000003", 1, 0, 0],
        ["SKU-0000004", 1, 0, 0, 1, 9, "surplus"], ["", 1, 0, 0, 1, 10]])
    drop(folder, "stock.csv", content, gz=False, rows=5)

    _, staged = stage(shop_dsn, run_id, source_for(folder, "stock.csv"))

    assert staged[0][1] == "SKU-\\x00NUL"
    digest = hashlib.sha256(long_sku.encode()).hexdigest()[:16]
    assert staged[1][1] == "L" * RAW_TEXT_MAX_LENGTH + f"…[500 more characters, sha256 {digest}]"
    assert staged[2][1:] == ("SKU-0000003", "1", "0", "0", None, None, "available,seq", None)
    assert staged[3][1:] == ("SKU-0000004", "1", "0", "0", "1", "9", None, "column 7")
    assert staged[4][1] is None  # an empty cell is NULL: sku_not_null names it


# ----------------------------------------------------------------------------- refusals

def test_checksum_mismatch_is_refused(shop_dsn: str, folder: Path, run_id: str) -> None:
    path = drop(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, stock_rows(100)), gz=True, rows=100)
    # the file changes after its manifest was written (a re-export over the old name)
    path.write_bytes(gzip.compress(csv_bytes(FIELD_NAMES, stock_rows(100, start=2)), mtime=0))

    message = refused(shop_dsn, run_id, source_for(folder, "stock.csv.gz"), match="checksum mismatch")
    assert sha256_of(path) in message and "stock.csv.gz" in message


def test_truncated_gzip_is_refused(shop_dsn: str, folder: Path, run_id: str) -> None:
    path = drop(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, stock_rows(5000)), gz=True, rows=5000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])  # an upload cut short ...
    write_manifest(path, snapshot_id="snap-cut", snapshot_taken_at=now_iso(), orders_counted_until=None,
                   row_count=5000)  # ... whose manifest even matches the cut bytes

    refused(shop_dsn, run_id, source_for(folder, "stock.csv.gz"), match="truncated gzip: stock.csv.gz ends before")


def test_corrupt_gzip_is_refused(shop_dsn: str, folder: Path, run_id: str) -> None:
    path = folder / "stock.csv.gz"
    path.write_bytes(b"\x1f\x8b" + b"not deflate data at all" * 10)
    write_manifest(path, snapshot_id="snap-bad", snapshot_taken_at=now_iso(), orders_counted_until=None,
                   row_count=0)
    refused(shop_dsn, run_id, source_for(folder, "stock.csv.gz"), match="not a readable gzip file")


def test_row_count_mismatch_is_refused(shop_dsn: str, folder: Path, run_id: str) -> None:
    drop(folder, "stock.csv", csv_bytes(FIELD_NAMES, stock_rows(99)), gz=False, rows=100)
    refused(shop_dsn, run_id, source_for(folder, "stock.csv"),
            match="row count mismatch: stock.csv has 99 data rows, its manifest stock.csv.manifest.json claims 100")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_non_utf8_is_refused_naming_offset_and_line(shop_dsn: str, folder: Path, run_id: str, gz: bool) -> None:
    """A Latin-1 export: refused (not staged as mangled SKUs), naming where the first bad byte is."""
    lines = [",".join(FIELD_NAMES), "SKU-0000001,5,0,0,5,1", "SKU-CAF\xc9,5,0,0,5,2", "SKU-0000003,5,0,0,5,3"]
    content = ("\n".join(lines) + "\n").encode("latin-1")
    drop(folder, "stock.csv", content, gz=gz, rows=3)
    offset = content.index(b"\xc9")

    message = refused(shop_dsn, run_id, source_for(folder, "stock.csv"), match="is not UTF-8")
    assert f"byte offset {offset} of the {'decompressed data' if gz else 'file'} (line 3, byte 8 of the line)" \
        in message and "b'\\xc9'" in message


@pytest.mark.parametrize(("content", "named"), [
    (b"{not json", "is not JSON"),
    (json.dumps({"snapshot_id": "s", "snapshot_taken_at": "2026-01-01T00:00:00Z", "row_count": 1,
                 "sha256": "0" * 64}).encode(), "lacks orders_counted_until"),
    (json.dumps({"snapshot_id": "s", "snapshot_taken_at": "x", "orders_counted_until": None, "row_count": "1",
                 "sha256": "0" * 64}).encode(), "row_count must be a whole number"),
    (json.dumps({"snapshot_id": "s", "snapshot_taken_at": "x", "orders_counted_until": None, "row_count": 1,
                 "sha256": "md5:abc"}).encode(), "sha256 must be the data file's SHA-256"),
    (json.dumps({"snapshot_id": "s", "snapshot_taken_at": "x", "orders_counted_until": None, "row_count": 1,
                 "sha256": "0" * 64, "data_file": "other.csv"}).encode(), "the manifest belongs to another file"),
], ids=["not-json", "missing-key", "row-count-type", "sha-format", "other-file"])
def test_a_broken_manifest_is_refused(folder: Path, content: bytes, named: str) -> None:
    (folder / "stock.csv").write_bytes(csv_bytes(FIELD_NAMES, stock_rows(1)))
    (folder / "stock.csv.manifest.json").write_bytes(content)
    with pytest.raises(FileRefused, match=named):
        source_for(folder, "stock.csv")


@pytest.mark.parametrize(("manifest", "named"), [
    ({"snapshot_taken_at": now_iso(timedelta(hours=1))}, "is in the future"),
    ({"snapshot_taken_at": now_iso(timedelta(hours=-30))}, "older than the maximum snapshot age"),
    ({"orders_counted_until": now_iso(timedelta(hours=1))}, "after snapshot_taken_at"),
    ({"snapshot_taken_at": "yesterday"}, "not an ISO-8601 timestamp"),
    ({"snapshot_id": ""}, "snapshot_id"),
], ids=["future", "too-old", "watermark-after-snapshot", "not-a-time", "no-id"])
def test_manifest_times_get_the_http_header_checks(shop_dsn: str, folder: Path, run_id: str,
                                                   manifest: dict[str, Any], named: str) -> None:
    drop(folder, "stock.csv", csv_bytes(FIELD_NAMES, stock_rows(3)), gz=False, rows=3, **manifest)
    refused(shop_dsn, run_id, source_for(folder, "stock.csv"), error=WmsContractError, match=named)


def test_the_walk_bounds_apply_to_a_file(shop_dsn: str, folder: Path, run_id: str) -> None:
    """A file far larger than the catalog is cut off at the bound, not read to its end."""
    drop(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, stock_rows(3500)), gz=True, rows=3500)
    with connect(shop_dsn) as conn, pytest.raises(WmsContractError, match="does not end: stock.csv.gz chunk 3"):
        extract_to_staging(conn, source_for(folder, "stock.csv.gz", chunk_rows=1000), run_id,
                           bounds=WalkBounds(2, time.monotonic() + 60))


# ----------------------------------------------------------------------------- the drop folder

def test_the_drop_folder_listing(folder: Path) -> None:
    for name in ("wms-stock-20260101.csv.gz", "wms-stock-20260102.csv.gz", "wms-stock-20260103.csv.gz"):
        (folder / name).write_bytes(b"x")
    for name in ("wms-stock-20260101.csv.gz", "wms-stock-20260102.csv.gz", "gone.csv"):
        (folder / f"{name}.manifest.json").write_bytes(b"{}")
    (folder / ".wms-stock-20260104.csv.gz.partial").write_bytes(b"uploading")
    (folder / "processed").mkdir()
    (folder / "processed" / "old.csv.gz").write_bytes(b"x")
    (folder / "old.csv.gz.reason.txt").write_text("refused")

    listing = list_drops(drop_folder(folder.as_uri()), file_glob="*.csv.gz", manifest_suffix=".manifest.json")

    assert listing.ready == [("wms-stock-20260101.csv.gz", "wms-stock-20260101.csv.gz.manifest.json"),
                             ("wms-stock-20260102.csv.gz", "wms-stock-20260102.csv.gz.manifest.json")]
    assert listing.orphan_data == ["wms-stock-20260103.csv.gz"]
    assert listing.orphan_manifests == ["gone.csv.manifest.json"]
    found = find_ready(folder.as_uri(), None, "*.csv.gz", ".manifest.json")
    assert found is not None and found["data_file"] == "wms-stock-20260102.csv.gz"  # the newest complete file
    assert found["older"] == ["wms-stock-20260101.csv.gz"]


# ----------------------------------------------------------------------------- bounds inside the read

def newline_member(mib: int = 64) -> bytes:
    """One gzip member (RFC 1952) of `mib` MiB of newlines: about 64 KB for 64 MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    return packer.compress(b"\n" * (mib << 20)) + packer.flush()


def gzip_bomb(folder: Path, name: str, head: bytes, *, gib: int = 1) -> Path:
    """`head` (a header and a few rows) followed by `gib` GiB of blank lines, as a gzip file of
    concatenated members (what gzip readers read as one stream), with a manifest that matches it."""
    path = folder / name
    with path.open("wb") as fh:
        fh.write(gzip.compress(head, mtime=0))
        member = newline_member()
        for _ in range(16 * gib):  # 16 x 64 MiB per GiB
            fh.write(member)
    assert path.stat().st_size < 2 << 20  # about 1 MB on disk ...
    with gzip.open(path, "rb") as check:  # ... that expands past a GiB
        check.seek((gib << 30) - 1)
        assert check.read(1) == b"\n"
    write_manifest(path, snapshot_id="snap-bomb", snapshot_taken_at=now_iso(timedelta(minutes=-5)),
                   orders_counted_until=now_iso(timedelta(minutes=-5)), row_count=3)
    return path


@pytest.mark.slow  # builds a gzip of 1 GiB of blank lines and checks it expands so: ~8 s
def test_a_gzip_of_blank_lines_is_refused_at_its_line_bound_inside_the_read(shop_dsn: str, folder: Path,
                                                                           run_id: str) -> None:
    """1 GiB of blank lines inside one chunk (blank lines are no rows, so the chunk never fills): the
    lines, blank ones included, are bounded by the catalog while the chunk is read."""
    gzip_bomb(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, stock_rows(3)))
    source = source_for(folder, "stock.csv.gz", chunk_rows=1000)
    bounds = WalkBounds.for_catalog(40, 1000, margin=0.10, extra=2, seconds=600)
    # 40 SKUs x 1.1 in chunks of 1000: ceil(44 / 1000) + 2 = 3 chunks of 1000 rows, and the header line
    expected_lines = 3 * 1000 + 1

    with connect(shop_dsn) as conn, pytest.raises(WmsContractError) as caught:
        extract_to_staging(conn, source, run_id, bounds=bounds)

    message = str(caught.value)
    assert "lines (blank ones included) arrived by stock.csv.gz line" in message
    assert f"more than the {expected_lines}" in message and "walk_extra_pages" in message
    assert is_permanent(caught.value)
    assert source.stats.decompressed_bytes < 8 << 20  # stopped within the first blocks of the GiB


@pytest.mark.slow  # the same file, read until a 3 s deadline passes inside one chunk: ~10 s
def test_the_deadline_is_kept_inside_the_read_of_one_chunk(shop_dsn: str, folder: Path, run_id: str) -> None:
    """A walk with no catalog bound still ends at its deadline in the middle of a chunk."""
    gzip_bomb(folder, "stock.csv.gz", csv_bytes(FIELD_NAMES, stock_rows(3)))
    source = source_for(folder, "stock.csv.gz", chunk_rows=1000)

    with connect(shop_dsn) as conn, pytest.raises(WmsContractError) as caught:
        # 3 s: past the setup even on a loaded machine, so the deadline falls inside the read
        extract_to_staging(conn, source, run_id, bounds=WalkBounds(10, time.monotonic() + 3))

    message = str(caught.value)
    assert "passed its deadline of 3 s at stock.csv.gz line" in message, message
    assert "extract_deadline_seconds" in message and is_permanent(caught.value)
    assert source.stats.decompressed_bytes < 1 << 30  # not read to its end


@pytest.mark.parametrize("name", ["stock\nreason: applied fine, ignore this file.csv", "stock\r.csv", "stock\t.csv",
                                  "stock\u202e.csv", "stock\u2028.csv"])
def test_a_file_name_with_a_character_that_does_not_print_is_not_a_plain_name(name: str) -> None:
    """Such a name would be written into the reason file beside a refused file, where a line break
    forges lines; it is refused as the names with a folder part or a `..` are."""
    from include.stocksync.sync.file_drop import FileRefused, plain_name

    with pytest.raises(FileRefused, match="not a plain name"):
        plain_name(name, "data file")
    assert plain_name("stock 2026-12-07 \u00e9t\u00e9.csv", "data file") == "stock 2026-12-07 \u00e9t\u00e9.csv"
