"""Settling a dropped file after its run (`include/stocksync/sync/file_drop.py`), step by step through the
pipeline functions the tasks call, on the real PostgreSQL and real files: a dry run and a run that
failed for a transient reason leave the file for the next run; one run per file. The runs and the
file bookkeeping are in stocksync's own database (`store`), the shop in its own, reached through its
port (tests/conftest.py: `clean_split`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.file_export import export_snapshot
from include.stocksync.config.files import FileSourceSettings
from include.stocksync.config.settings import RunOptions, load_settings
from include.stocksync.domain.errors import TransientError
from include.stocksync.runs import record as runs
from include.stocksync.sync import file_drop, pipeline
from tests.conftest import TEST_TOKEN, SplitDatabases, shop_in_line_with_wms, stock_fingerprint

DAG_ID = "test_file_drop"


@pytest.fixture
def exported(clean_shop: str, wms: Any, tmp_path: Path) -> Any:
    shop_in_line_with_wms(clean_shop, wms, 40, 11, drift_share=0.3)
    return export_snapshot(wms.url, TEST_TOKEN, tmp_path / "drop")


def open_file_run(store: str, folder: Path, options: RunOptions | None = None) -> str:
    run_id = f"file-{uuid.uuid4().hex[:8]}"
    settings = load_settings().model_copy(update={
        "wms_source": "file", "file_source": FileSourceSettings(location=folder.as_uri())})
    pipeline.open_run(store, run_id=run_id, dag_id=DAG_ID, settings=settings, options=options)
    return run_id


def found(exported: Any) -> dict[str, Any]:
    result = file_drop.find_ready(exported.data.parent.as_uri(), None, "*", ".manifest.json")
    assert result is not None and result["data_file"] == exported.data.name
    return result


def test_a_dry_run_leaves_the_file_for_the_real_run(clean_split: SplitDatabases, exported: Any) -> None:
    dsn, store, shop = clean_split.shop, clean_split.stocksync, clean_split.shop_port()
    before = stock_fingerprint(dsn)
    run_id = open_file_run(store, exported.data.parent, RunOptions(dry_run=True))

    file_drop.extract_file(store, run_id=run_id, dag_id=DAG_ID, found=found(exported), shop=shop)
    pipeline.validate(store, run_id=run_id, shop=shop)
    plan = pipeline.merge(store, run_id=run_id, shop=shop)
    pipeline.load_stock(store, run_id=run_id, plan_table=plan.plan_table, shop=shop)
    pipeline.release_freeze(store, run_id=run_id, dag_id=DAG_ID, shop=shop)
    settled = file_drop.settle(store, run_id=run_id, dag_id=DAG_ID)

    assert runs.get_run(store, run_id)["status"] == "dry_run"
    assert settled["settled"] == "released" and settled["moved_to"] is None
    assert exported.data.exists() and exported.manifest.exists()
    assert stock_fingerprint(dsn) == before
    # the real run takes the same file, applies it and moves it
    real = open_file_run(store, exported.data.parent)
    file_drop.extract_file(store, run_id=real, dag_id=DAG_ID, found=found(exported), shop=shop)
    pipeline.validate(store, run_id=real, shop=shop)
    plan = pipeline.merge(store, run_id=real, shop=shop)
    pipeline.load_stock(store, run_id=real, plan_table=plan.plan_table, shop=shop)
    pipeline.release_freeze(store, run_id=real, dag_id=DAG_ID, shop=shop)
    assert file_drop.settle(store, run_id=real, dag_id=DAG_ID)["settled"] == "processed"
    assert runs.get_run(store, real)["status"] == "applied" and not exported.data.exists()
    assert stock_fingerprint(dsn) != before


def test_a_transient_failure_leaves_the_file_and_frees_it(clean_split: SplitDatabases, exported: Any) -> None:
    store, shop = clean_split.stocksync, clean_split.shop_port()
    run_id = open_file_run(store, exported.data.parent)
    file_drop.extract_file(store, run_id=run_id, dag_id=DAG_ID, found=found(exported), shop=shop)
    # validation's database went away, through every retry (what runs.step records on such a failure)
    runs.record_failure(store, run_id, "validate", TransientError("connection to the shop database lost"), 1.0)
    pipeline.release_freeze(store, run_id=run_id, dag_id=DAG_ID, shop=shop)

    settled = file_drop.settle(store, run_id=run_id, dag_id=DAG_ID)

    assert runs.get_run(store, run_id)["status"] == "failed"
    assert settled["settled"] == "released" and exported.data.exists() and exported.manifest.exists()
    assert not (exported.data.parent / "rejected").exists()
    # the next run may take it
    nxt = open_file_run(store, exported.data.parent)
    result = file_drop.extract_file(store, run_id=nxt, dag_id=DAG_ID, found=found(exported), shop=shop)
    assert result.rows == 40


def test_one_run_per_file(clean_split: SplitDatabases, exported: Any) -> None:
    store, shop = clean_split.stocksync, clean_split.shop_port()
    first = open_file_run(store, exported.data.parent)
    file_drop.extract_file(store, run_id=first, dag_id=DAG_ID, found=found(exported), shop=shop)
    second = open_file_run(store, exported.data.parent)

    with pytest.raises(file_drop.FileClaimed, match=f"taken by run {first} of DAG {DAG_ID}"):
        file_drop.extract_file(store, run_id=second, dag_id=DAG_ID, found=found(exported), shop=shop)

    # once the first run is over without settling (killed before its teardown), the file is free
    pipeline.release_freeze(store, run_id=first, dag_id=DAG_ID, shop=shop)
    third = open_file_run(store, exported.data.parent)
    assert file_drop.extract_file(store, run_id=third, dag_id=DAG_ID, found=found(exported), shop=shop).rows == 40
    assert [d["status"] for d in file_drop.file_drops_of_run(store, first)] == ["released"]
    assert file_drop.settle(store, run_id=second, dag_id=DAG_ID)["settled"] is None  # it never held the file
