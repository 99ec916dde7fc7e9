"""Export the WMS simulator's stock as a nightly drop file with its manifest.

A file-drop WMS writes its stock to a file every night; the simulator serves an API. This exporter
plays the warehouse's export job for the demo (`scripts/demo.sh --source file`), the tests and the
benchmark: it walks one snapshot of `GET /v1/stock` page by page and writes

- `wms-stock-<taken at>-<snapshot id>.csv.gz` (or `.jsonl`, plain or gzip): a header line with the
  contract's fields (renamed through `columns` when asked), one row per SKU;
- `<data file>.manifest.json`: snapshot id, taken at, orders counted until, row count and the
  data file's SHA-256 (docs/file-drop-source.md).

Both are written under a hidden temporary name and renamed, the manifest last: a reader that
waits for the manifest never sees half a file.

    STOCKSYNC_WMS_TOKEN=... python -m devstack.file_export --wms-url http://127.0.0.1:18765 --out DIR \\
        [--format csv|jsonl] [--no-gzip] [--page-size 10000]

The bearer token comes from `--token-file` or `STOCKSYNC_WMS_TOKEN`, never the command line.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests

from include.stocksync.domain.contract import FIELD_NAMES

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class ExportedFile:
    data: Path
    manifest: Path
    snapshot_id: str
    snapshot_taken_at: str
    orders_counted_until: str | None
    rows: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(data: Path, *, snapshot_id: Any, snapshot_taken_at: Any, orders_counted_until: Any,
                   row_count: Any, sha256: str | None = None, suffix: str = MANIFEST_SUFFIX,
                   extra: Mapping[str, Any] | None = None) -> Path:
    """The manifest next to `data` (its SHA-256 computed unless given), written whole, atomically."""
    manifest = data.with_name(data.name + suffix)
    body = {"snapshot_id": snapshot_id, "snapshot_taken_at": snapshot_taken_at,
            "orders_counted_until": orders_counted_until, "row_count": row_count,
            "sha256": sha256 or sha256_of(data), "data_file": data.name, **(extra or {})}
    partial = manifest.with_name(f".{manifest.name}.partial")
    partial.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    partial.replace(manifest)
    return manifest


def stock_pages(wms_url: str, token: str, page_size: int = 10000) -> Iterator[dict[str, Any]]:
    """Every page of one snapshot walk of the simulator's stock API."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": page_size}
        if cursor:
            params["cursor"] = cursor
        response = session.get(f"{wms_url.rstrip('/')}/v1/stock", params=params, timeout=60)
        response.raise_for_status()
        page = response.json()
        yield page
        cursor = page.get("next_cursor")
        if not cursor:
            return


def export_snapshot(wms_url: str, token: str, folder: Path, *, fmt: str = "csv", compress: bool = True,
                    page_size: int = 10000, columns: Mapping[str, str] | None = None, delimiter: str = ",",
                    name: str | None = None, write_manifest_file: bool = True) -> ExportedFile:
    """Walk one snapshot into `folder` as a drop file and its manifest. `columns` renames contract
    fields in the file (field -> column name), as a WMS with its own column names would."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = dict(columns or {})
    pages = stock_pages(wms_url, token, page_size)
    first = next(pages)
    snapshot_id, taken_at = first["snapshot_id"], first["snapshot_taken_at"]
    counted = first.get("orders_counted_until")
    stamp = taken_at.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    extension = ("csv" if fmt == "csv" else "jsonl") + (".gz" if compress else "")
    data = folder / (name or f"wms-stock-{stamp}-{snapshot_id}.{extension}")
    partial = data.with_name(f".{data.name}.partial")
    rows = 0
    raw = partial.open("wb")
    binary = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) if compress else raw
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, delimiter=delimiter, lineterminator="\n") if fmt == "csv" else None
        if writer is not None:
            writer.writerow([columns.get(f, f) for f in FIELD_NAMES])
        for page in (first, *pages):
            for item in page["items"]:
                if writer is not None:
                    writer.writerow([item.get(f) for f in FIELD_NAMES])
                else:
                    text.write(json.dumps({columns.get(k, k): v for k, v in item.items()}) + "\n")
                rows += 1
    finally:
        text.close()  # closes the gzip stream and the file
        if compress:
            raw.close()
    partial.replace(data)
    sha = sha256_of(data)
    manifest = data.with_name(data.name + MANIFEST_SUFFIX)
    if write_manifest_file:
        manifest = write_manifest(data, snapshot_id=snapshot_id, snapshot_taken_at=taken_at,
                                  orders_counted_until=counted, row_count=rows, sha256=sha)
    return ExportedFile(data, manifest, snapshot_id, taken_at, counted, rows, sha)


def demo_drop(wms_url: str, token: str, folder: Path) -> tuple[dict[str, str], ExportedFile]:
    """The demo on the file source: tonight's export in `folder` (`.local/wms-drop/`), and the
    environment that points the DAGs at it (`wms_source: file`)."""
    exported = export_snapshot(wms_url, token, folder)
    env = {"STOCKSYNC_WMS_SOURCE": "file", "STOCKSYNC_FILE_SOURCE__LOCATION": folder.resolve().as_uri(),
           "STOCKSYNC_FILE_SOURCE__POKE_INTERVAL_SECONDS": "5", "STOCKSYNC_FILE_SOURCE__WAIT_DEADLINE_SECONDS": "120"}
    return env, exported


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wms-url", required=True)
    parser.add_argument("--token-file", type=Path, help="first line: the WMS bearer token")
    parser.add_argument("--out", type=Path, required=True, help="the drop folder")
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--no-gzip", action="store_true")
    parser.add_argument("--page-size", type=int, default=10000)
    args = parser.parse_args(argv)
    token = args.token_file.read_text().splitlines()[0].strip() if args.token_file \
        else os.environ.get("STOCKSYNC_WMS_TOKEN", "")
    if not token:
        print("no WMS token: --token-file or STOCKSYNC_WMS_TOKEN", file=sys.stderr)
        return 2
    exported = export_snapshot(args.wms_url, token, args.out, fmt=args.format, compress=not args.no_gzip,
                               page_size=args.page_size)
    print(json.dumps(exported.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
