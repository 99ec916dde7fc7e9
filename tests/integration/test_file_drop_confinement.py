"""A drop folder written by another system, step by step through the pipeline functions the file
tasks call (`include/stocksync/sync/file_drop.py`), on the real PostgreSQL, the WMS simulator's real
export and real files: a name that leads out of the folder (a symbolic link, a hard link, a linked
folder, `..`) is refused and moved to `rejected/<date>/` with its reason, never read and applied;
a small gzip that expands to a GiB of blank lines is refused at once, as permanent, at its bound.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devstack.file_export import export_snapshot, write_manifest
from include.stocksync.config.files import FileSourceSettings
from include.stocksync.config.settings import load_settings
from include.stocksync.domain.errors import is_permanent
from include.stocksync.runs import record as runs
from include.stocksync.sync import file_drop, pipeline
from tests.conftest import TEST_TOKEN, SplitDatabases, shop_in_line_with_wms, stock_fingerprint
from tests.unit.test_file_source import newline_member

DAG_ID = "test_file_drop"


@pytest.fixture
def shop(clean_split: SplitDatabases, wms: Any) -> SplitDatabases:
    """The shop's database in line with the WMS (half its SKUs drifted) and stocksync's."""
    shop_in_line_with_wms(clean_split.shop, wms, 40, 12, drift_share=0.5)
    return clean_split


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The drop folder, and a folder outside it (what a link may lead to)."""
    drop, outside = tmp_path / "drop", tmp_path / "outside"
    drop.mkdir()
    outside.mkdir()
    return drop, outside


def open_file_run(dsn: str, folder: Path) -> str:
    run_id = f"file-{uuid.uuid4().hex[:8]}"
    settings = load_settings().model_copy(update={
        "wms_source": "file", "file_source": FileSourceSettings(location=folder.as_uri())})
    pipeline.open_run(dsn, run_id=run_id, dag_id=DAG_ID, settings=settings)
    return run_id


def refused_and_settled(db: SplitDatabases, folder: Path, found: dict[str, Any],
                        *fragments: str) -> tuple[str, dict[str, Any]]:
    """The extract refuses `found` as permanent on its first attempt, shop stock untouched; the
    settling afterwards (as the teardown does). Returns (error, settle's answer)."""
    dsn = db.stocksync
    before = stock_fingerprint(db.shop)
    run_id = open_file_run(dsn, folder)
    with pytest.raises(Exception) as caught:
        file_drop.extract_file(dsn, run_id=run_id, dag_id=DAG_ID, found=found, shop=db.shop_port())
    message = str(caught.value)
    assert is_permanent(caught.value), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    pipeline.release_freeze(dsn, run_id=run_id, dag_id=DAG_ID, shop=db.shop_port())
    settled = file_drop.settle(dsn, run_id=run_id, dag_id=DAG_ID)
    run = runs.get_run(dsn, run_id)
    assert run["status"] == "failed" and [a["kind"] for a in run["attempts"]] == ["permanent"]
    assert stock_fingerprint(db.shop) == before
    return message, settled


def rejected_folder(folder: Path) -> Path:
    return folder / "rejected" / datetime.now(timezone.utc).date().isoformat()


def found_of(folder: Path, data_file: str) -> dict[str, Any]:
    return {"location": folder.as_uri(), "data_file": data_file, "manifest_file": f"{data_file}.manifest.json"}


@pytest.mark.parametrize("linked", ["data", "manifest", "both"])
def test_a_symbolic_link_out_of_the_folder_is_refused_with_its_reason(shop: SplitDatabases, wms: Any,
                                                                     folders: tuple[Path, Path], linked: str) -> None:
    drop, outside = folders
    exported = export_snapshot(wms.url, TEST_TOKEN, outside)  # a sound export, but outside the folder
    name = exported.data.name
    for kind, path in (("data", exported.data), ("manifest", exported.manifest)):
        if linked in (kind, "both"):
            (drop / path.name).symlink_to(path)
        else:
            (drop / path.name).write_bytes(path.read_bytes())
    shown = name if linked == "data" else exported.manifest.name  # the manifest is read first
    listed = file_drop.find_ready(drop.as_uri(), None, "*", ".manifest.json")
    assert listed is not None and listed["data_file"] == name  # the wait sees it: the extract refuses it

    message, settled = refused_and_settled(shop, drop, listed, f"{shown} is a symbolic link")

    assert settled["settled"] == "rejected"
    rejected = rejected_folder(drop)
    reason = (rejected / f"{name}.reason.txt").read_text()
    assert f"{shown} is a symbolic link" in reason
    # the links moved as links; what they led to is where it was, unchanged
    for path in (exported.data, exported.manifest):
        moved = rejected / path.name
        assert moved.is_symlink() == (linked in ("both", "manifest" if path == exported.manifest else "data"))
        assert not moved.is_symlink() or os.readlink(moved) == str(path)
    assert exported.data.read_bytes() and (outside / exported.manifest.name).exists()
    assert sorted(p.name for p in drop.iterdir()) == ["rejected"]


def test_a_hard_link_is_refused(shop: SplitDatabases, wms: Any, folders: tuple[Path, Path]) -> None:
    drop, outside = folders
    exported = export_snapshot(wms.url, TEST_TOKEN, outside)
    os.link(exported.data, drop / exported.data.name)
    (drop / exported.manifest.name).write_bytes(exported.manifest.read_bytes())

    message, settled = refused_and_settled(shop, drop, found_of(drop, exported.data.name),
                                           f"{exported.data.name} is a hard link (the file has 2 names")

    assert settled["settled"] == "rejected"
    assert "hard link" in (rejected_folder(drop) / f"{exported.data.name}.reason.txt").read_text()
    assert exported.data.exists()


@pytest.mark.parametrize("how", ["linked-folder", "dot-dot"])
def test_a_name_with_a_folder_part_is_never_read(shop: SplitDatabases, wms: Any, folders: tuple[Path, Path],
                                                 how: str) -> None:
    """The wait hands over plain names; a name reaching out of the folder (through a linked folder
    inside it, or `..`) is refused before the file is claimed or opened."""
    drop, outside = folders
    exported = export_snapshot(wms.url, TEST_TOKEN, outside)
    manifest = json.loads(exported.manifest.read_text())
    del manifest["data_file"]  # optional in a manifest: nothing else would stop the read
    exported.manifest.write_text(json.dumps(manifest))
    if how == "linked-folder":
        (drop / "linked").symlink_to(outside, target_is_directory=True)
        name = f"linked/{exported.data.name}"
    else:
        name = f"../outside/{exported.data.name}"

    message, settled = refused_and_settled(shop, drop, found_of(drop, name), f"the data file {name!r} is not a plain "
                                           "name in the drop folder")

    assert settled["settled"] is None  # nothing was claimed: nothing in the folder to move
    assert exported.data.exists() and exported.manifest.exists()


def test_a_linked_rejected_folder_is_not_followed(shop: SplitDatabases, wms: Any, folders: tuple[Path, Path]) -> None:
    """Settling never moves a file (or writes a reason file) through a link out of the folder."""
    drop, outside = folders
    exported = export_snapshot(wms.url, TEST_TOKEN, drop)
    (drop / exported.data.name).write_bytes(b"not a stock file\n")  # refused: its header
    (drop / "rejected").symlink_to(outside, target_is_directory=True)
    run_id = open_file_run(shop.stocksync, drop)
    with pytest.raises(Exception, match="the header does not map"):
        file_drop.extract_file(shop.stocksync, run_id=run_id, dag_id=DAG_ID, found=found_of(drop, exported.data.name),
                               shop=shop.shop_port())
    pipeline.release_freeze(shop.stocksync, run_id=run_id, dag_id=DAG_ID, shop=shop.shop_port())

    with pytest.raises(Exception, match=r"rejected is a symbolic link or not a folder") as caught:
        file_drop.settle(shop.stocksync, run_id=run_id, dag_id=DAG_ID)

    assert is_permanent(caught.value)
    assert list(outside.iterdir()) == []  # nothing moved or written through the link
    assert exported.data.exists() and exported.manifest.exists()


def test_a_gzip_of_blank_lines_is_refused_at_once_as_permanent(shop: SplitDatabases,
                                                               folders: tuple[Path, Path]) -> None:
    """About 1 MB on disk, a GiB of blank lines after its header: refused at its line bound while
    it is read (shipped chunk_rows), on the first attempt, and moved to rejected/ with the bound."""
    drop, _ = folders
    data = drop / "wms-stock-bomb.csv.gz"
    header = "sku,on_hand,non_usable,allocated,available,seq\nSKU-0000001,5,0,0,5,1\n".encode()
    with data.open("wb") as fh:
        fh.write(gzip.compress(header, mtime=0))
        member = newline_member()
        for _ in range(16):  # 16 x 64 MiB
            fh.write(member)
    taken = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    write_manifest(data, snapshot_id="snap-bomb", snapshot_taken_at=taken, orders_counted_until=taken, row_count=1)
    settings = load_settings()
    chunk = settings.file_source.chunk_rows
    # 40 enabled SKUs x (1 + margin) in chunks: that many chunks plus the extra ones, and a header line
    chunks = math.ceil(40 * (1 + settings.walk_page_margin) / chunk) + settings.walk_extra_pages
    expected_lines = chunks * chunk + 1

    message, settled = refused_and_settled(shop, drop, found_of(drop, data.name),
                                           "lines (blank ones included) arrived by wms-stock-bomb.csv.gz line",
                                           f"more than the {expected_lines}")

    assert settled["settled"] == "rejected"
    reason = (rejected_folder(drop) / f"{data.name}.reason.txt").read_text()
    assert "lines (blank ones included)" in reason and f"more than the {expected_lines}" in reason


@pytest.mark.parametrize(("taken_at", "named"), [
    ("9999-12-31T23:59:59-14:00", "not a plausible time"),  # past year 9999 in UTC: cannot even be stored
    ("2999-01-01T00:00:00Z", "is in the future"),
], ids=["year-10000-in-utc", "future"])
def test_a_duplicate_files_manifest_times_get_the_header_checks(shop: SplitDatabases, wms: Any,
                                                                folders: tuple[Path, Path], taken_at: str,
                                                                named: str) -> None:
    """A file claiming a snapshot already applied is a duplicate, and its manifest's times are
    recorded on the run: they are checked first, and a time no WMS means refuses the file like
    any other refused file (settled into rejected/, the run closed), never a run left open."""
    from tests.integration.loop_helpers import full_sync

    drop, _ = folders
    base = full_sync(shop.shop, wms, f"nightly-before-the-duplicate-{named[:6]}", store=shop.stocksync)
    assert base["status"] == "applied"
    data = drop / "stock-again.csv"
    data.write_bytes(b"sku,on_hand,non_usable,allocated,available,seq\n")
    write_manifest(data, snapshot_id=base["snapshot_id"], snapshot_taken_at=taken_at, orders_counted_until=None,
                   row_count=0)
    _, settled = refused_and_settled(shop, drop, found_of(drop, data.name), "snapshot_taken_at", named)
    assert settled["settled"] == "rejected", settled
    assert (rejected_folder(drop) / data.name).exists() and not data.exists()
