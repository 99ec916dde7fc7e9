"""End-to-end `dag.test()` runs of `inventory_nightly_sync` on a file-drop WMS source.

The deployment setting `wms_source: file` is set through the environment before the DAG is
parsed, with the drop folder a temporary `file://` folder. The WMS simulator's snapshot is
exported into it by `devstack/file_export.py`, as a warehouse's nightly export job would;
refusals are made from that real export (cut, changed, renamed). The wait runs its trigger in
line (`dag.test()` does that for deferred tasks).

The shop and stocksync's own tables are in two databases (tests/conftest.py), Airflow's
`stocksync_shop` and `stocksync_db`: the shop's stock and freezes are read in `dsn`, the runs, the
audit and the file bookkeeping in `store`.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from devstack.demo_seed import seed_demo
from devstack.file_export import export_snapshot, write_manifest
from include.stocksync.store.db import connect
from include.stocksync.sync.file_drop import file_drops_of_run
from include.stocksync.sync.pipeline import get_run
from tests.conftest import TEST_TOKEN, active_freezes, fresh_dag, stock_fingerprint

pytestmark = pytest.mark.slow

DAG_ID = "inventory_nightly_sync"


@pytest.fixture
def seeded(clean_shop: str, stocksync_dsn: str, wms: Any) -> dict[str, Any]:
    """The demo shop (`dsn`, the shop's database) and stocksync's own database (`store`)."""
    seed = seed_demo(clean_shop, wms.admin, skus=40, seed=3, orders=30)
    assert seed.orders_acknowledged > 0 and seed.orders_unsent > 0 and seed.drifted > 0
    return {"dsn": clean_shop, "store": stocksync_dsn, "seed": seed}


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "wms-drop"
    folder.mkdir()
    return folder


def use_file_source(monkeypatch: pytest.MonkeyPatch, folder: Path, *, deadline: float = 60,
                    poke: float = 0.5) -> None:
    """This deployment reads its WMS from files in `folder` (the DAG is parsed after this)."""
    monkeypatch.setenv("STOCKSYNC_WMS_SOURCE", "file")
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__LOCATION", folder.as_uri())
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__WAIT_DEADLINE_SECONDS", str(deadline))
    monkeypatch.setenv("STOCKSYNC_FILE_SOURCE__POKE_INTERVAL_SECONDS", str(poke))


def run_nightly(dagbag: Any) -> Any:
    from airflow.utils.state import DagRunState

    dag_run = fresh_dag(dagbag, DAG_ID).test()
    assert dag_run.state in (DagRunState.SUCCESS, DagRunState.FAILED)
    return dag_run


def task_states(dag_run: Any) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def alerts_for(webhook: Any, run_id: str) -> list[dict[str, Any]]:
    return [entry["body"] for entry in webhook.received() if entry["body"].get("run_id") == run_id]


def today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def audit(store: str, run_id: str) -> dict[str, tuple[Any, ...]]:
    with connect(store) as conn:
        return {row[0]: row[1:] for row in conn.execute(
            "SELECT sku, old_qty, wms_available, adjustment, new_qty, outcome FROM stocksync.sku_outcomes(%s)",
            (run_id,)).fetchall()}


def restore_stock(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    """Put every stock row back as it was (quantity and WMS sequence), as before a sync."""
    with connect(dsn) as conn:
        for sku, qty, wms_seq, _ in rows:
            conn.execute("UPDATE shop.stock SET qty = %s, wms_seq = %s WHERE sku = %s", (qty, wms_seq, sku))
        conn.commit()


def qty_and_seq(dsn: str) -> list[tuple[Any, ...]]:
    return [(sku, qty, seq) for sku, qty, seq, _ in stock_fingerprint(dsn)]


# ----------------------------------------------------------------------------- the happy path

def test_a_file_gives_the_same_stock_as_the_http_source(dagbag: Any, seeded: dict[str, Any], wms: Any,
                                                        webhook: Any, drop: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same WMS data through the API and through a gzip CSV export: the same shop stock,
    SKU by SKU, and the same audit (old, WMS available, adjustment, new, outcome)."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    before = stock_fingerprint(dsn)
    exported = export_snapshot(wms.url, TEST_TOKEN, drop)  # tonight's export, before either sync

    http_run = run_nightly(dagbag)
    assert http_run.state == DagRunState.SUCCESS, get_run(store, http_run.run_id)["error"]
    after_http = qty_and_seq(dsn)
    assert after_http != [(s, q, w) for s, q, w, _ in before]  # the HTTP sync changed something

    restore_stock(dsn, before)
    use_file_source(monkeypatch, drop)
    file_run = run_nightly(dagbag)

    assert file_run.state == DagRunState.SUCCESS, get_run(store, file_run.run_id)["error"]
    assert qty_and_seq(dsn) == after_http
    assert audit(store, file_run.run_id) == audit(store, http_run.run_id)
    run = get_run(store, file_run.run_id)
    assert run["status"] == "applied" and run["snapshot_id"] == exported.snapshot_id
    assert run["extracted"] == 40 and run["valid"] == 40 and run["freeze_seconds"] > 0
    assert active_freezes(dsn) == []
    assert alerts_for(webhook, file_run.run_id) == []
    # the file and its manifest went to processed/<date>/, and the run remembers its checksum
    processed = drop / "processed" / today()
    assert sorted(p.name for p in processed.iterdir()) == sorted([exported.data.name, exported.manifest.name])
    assert not exported.data.exists() and not exported.manifest.exists()
    [taken] = file_drops_of_run(store, file_run.run_id)
    assert taken["status"] == "processed" and taken["sha256_verified"] and taken["sha256"] == exported.sha256
    assert taken["rows_read"] == 40 and taken["moved_to"].endswith(f"/processed/{today()}/{exported.data.name}")


def test_a_late_file_inside_the_deadline_is_waited_for_without_freezing(
        dagbag: Any, seeded: dict[str, Any], wms: Any, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait defers until the file comes; checkout is open and no run record is opened while
    it waits (the setup comes after the wait)."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    use_file_source(monkeypatch, drop, deadline=120, poke=0.5)
    seen_while_waiting: dict[str, Any] = {}

    def exporter() -> None:
        time.sleep(4)
        seen_while_waiting["freezes"] = active_freezes(dsn)
        with connect(store) as conn:
            seen_while_waiting["runs"] = conn.execute("SELECT count(*) FROM stocksync.sync_runs").fetchone()[0]
        seen_while_waiting["exported"] = export_snapshot(wms.url, TEST_TOKEN, drop)

    thread = threading.Thread(target=exporter)
    started = time.monotonic()
    thread.start()
    try:
        dag_run = run_nightly(dagbag)
    finally:
        thread.join()

    assert dag_run.state == DagRunState.SUCCESS, get_run(store, dag_run.run_id)["error"]
    assert time.monotonic() - started >= 4  # it did wait for the file
    assert seen_while_waiting["freezes"] == [] and seen_while_waiting["runs"] == 0
    run = get_run(store, dag_run.run_id)
    assert run["status"] == "applied" and run["snapshot_id"] == seen_while_waiting["exported"].snapshot_id


# ----------------------------------------------------------------------------- no file

def test_a_file_that_never_arrives_fails_the_run_with_an_alert_and_nothing_held(
        dagbag: Any, seeded: dict[str, Any], webhook: Any, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = seeded["dsn"]
    fingerprint = stock_fingerprint(dsn)
    use_file_source(monkeypatch, drop, deadline=3, poke=0.5)

    dag_run = run_nightly(dagbag)

    from airflow.utils.state import DagRunState

    assert dag_run.state == DagRunState.FAILED
    states = task_states(dag_run)
    assert states["wait_for_wms_file"] == "failed" and states["freeze_checkout"] == "upstream_failed"
    assert stock_fingerprint(dsn) == fingerprint and active_freezes(dsn) == []
    [alert] = [a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "wait_for_wms_file"]
    assert "no WMS stock file arrived" in alert["error"] and "nothing was frozen or changed" in alert["error"]
    assert alert["try_number"] == "1"  # no retries: waiting again cannot make the deadline later


def test_a_file_without_its_manifest_is_refused_at_the_deadline(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, drop: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file alone is never taken (it may still be uploading); when the wait ends it is
    refused to rejected/<date>/ with its reason, and the run fails with an alert, nothing frozen."""
    dsn, store = seeded["dsn"], seeded["store"]
    fingerprint = stock_fingerprint(dsn)
    exported = export_snapshot(wms.url, TEST_TOKEN, drop, write_manifest_file=False)
    use_file_source(monkeypatch, drop, deadline=3, poke=0.5)

    dag_run = run_nightly(dagbag)

    assert task_states(dag_run)["wait_for_wms_file"] == "failed"
    assert stock_fingerprint(dsn) == fingerprint and active_freezes(dsn) == []
    rejected = drop / "rejected" / today()
    assert not exported.data.exists() and (rejected / exported.data.name).exists()
    reason = (rejected / f"{exported.data.name}.reason.txt").read_text()
    assert "no manifest" in reason and f"{exported.data.name}.manifest.json" in reason and dag_run.run_id in reason
    [alert] = [a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "wait_for_wms_file"]
    assert "refused: no manifest" in alert["error"]
    assert [(d["data_file"], d["status"]) for d in file_drops_of_run(store, dag_run.run_id)] == \
        [(exported.data.name, "rejected")]


# ----------------------------------------------------------------------------- refused at extract

def test_a_checksum_mismatch_is_refused_to_rejected_and_releases_the_freeze(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, drop: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    dsn, store = seeded["dsn"], seeded["store"]
    fingerprint = stock_fingerprint(dsn)
    exported = export_snapshot(wms.url, TEST_TOKEN, drop)
    manifest = json.loads(exported.manifest.read_text())
    write_manifest(exported.data, **{k: manifest[k] for k in ("snapshot_id", "snapshot_taken_at",
                                                              "orders_counted_until", "row_count")},
                   sha256="0" * 64)
    use_file_source(monkeypatch, drop)

    dag_run = run_nightly(dagbag)

    states = task_states(dag_run)
    assert states["extract_wms_counts"] == "failed" and states["settle_wms_file"] == "success"
    assert stock_fingerprint(dsn) == fingerprint and active_freezes(dsn) == []
    run = get_run(store, dag_run.run_id)
    assert run["status"] == "failed" and "checksum mismatch" in run["error"]
    assert run["freeze_seconds"] > 0  # the setup froze checkout after the file was found; the teardown released
    rejected = drop / "rejected" / today()
    assert (rejected / exported.data.name).exists() and (rejected / exported.manifest.name).exists()
    assert "checksum mismatch" in (rejected / f"{exported.data.name}.reason.txt").read_text()
    alerts = [a for a in alerts_for(webhook, dag_run.run_id) if a["task_id"] == "extract_wms_counts"]
    assert len(alerts) == 1 and "checksum mismatch" in alerts[0]["error"]  # permanent: one try, one alert
    [taken] = file_drops_of_run(store, dag_run.run_id)
    assert taken["status"] == "rejected" and not taken["sha256_verified"] and "checksum mismatch" in taken["reason"]


# ----------------------------------------------------------------------------- duplicates

def test_a_file_already_applied_is_a_duplicate_not_applied_twice(
        dagbag: Any, seeded: dict[str, Any], wms: Any, webhook: Any, drop: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same file dropped again (same snapshot id), and the same bytes under a new manifest
    (another snapshot id: the checksum memory), each end as `duplicate` with the stock untouched."""
    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    use_file_source(monkeypatch, drop)
    exported = export_snapshot(wms.url, TEST_TOKEN, drop)
    keep = drop.parent / "copy"
    keep.mkdir()
    shutil.copy2(exported.data, keep / exported.data.name)
    shutil.copy2(exported.manifest, keep / exported.manifest.name)

    first = run_nightly(dagbag)
    assert first.state == DagRunState.SUCCESS and get_run(store, first.run_id)["status"] == "applied"
    after_first = stock_fingerprint(dsn)

    # 1. the very same file and manifest, dropped again
    shutil.copy2(keep / exported.data.name, drop / exported.data.name)
    shutil.copy2(keep / exported.manifest.name, drop / exported.manifest.name)
    again = run_nightly(dagbag)
    # 2. the same bytes under a new name and a manifest with a new snapshot id
    renamed = drop / f"again-{exported.data.name}"
    shutil.copy2(keep / exported.data.name, renamed)
    write_manifest(renamed, snapshot_id="snap-reissued", snapshot_taken_at=exported.snapshot_taken_at,
                   orders_counted_until=exported.orders_counted_until, row_count=exported.rows)
    reissued = run_nightly(dagbag)

    for dag_run, matched in ((again, "snapshot_id"), (reissued, "checksum")):
        assert dag_run.state == DagRunState.SUCCESS
        run = get_run(store, dag_run.run_id)
        assert run["status"] == "duplicate", run["error"]
        assert run["apply_details"]["duplicate_of"] == first.run_id and run["apply_details"]["matched"] == matched
        [taken] = file_drops_of_run(store, dag_run.run_id)
        assert taken["status"] == "duplicate" and taken["duplicate_of"] == first.run_id
        assert "/processed/" in taken["moved_to"] and Path(taken["moved_to"].removeprefix("file://")).exists()
        assert Path(taken["moved_to"].removeprefix("file://") + ".reason.txt").read_text().count("duplicate") >= 1
        assert active_freezes(dsn) == [] and alerts_for(webhook, dag_run.run_id) == []
        with connect(store) as conn:
            applied = conn.execute("SELECT count(*) FROM stocksync.sku_audit WHERE run_id = %s",
                                   (dag_run.run_id,)).fetchone()
        assert applied == (0,)
    assert stock_fingerprint(dsn) == after_first  # byte for byte: nothing applied twice
    assert [p.name for p in drop.iterdir() if p.is_file()] == []  # every file settled


def test_a_refused_newer_file_then_the_older_one_and_the_oldest_superseded(
        dagbag: Any, seeded: dict[str, Any], wms: Any, drop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest complete file is taken first. One that fails validation is rejected with the
    failed check as its reason (checkout released, nothing written); the next run takes the newest
    file left, and an older one it supersedes is set aside, never applied after it."""
    import csv
    import gzip
    import io

    from airflow.utils.state import DagRunState

    dsn, store = seeded["dsn"], seeded["store"]
    fingerprint = stock_fingerprint(dsn)
    use_file_source(monkeypatch, drop)
    oldest = export_snapshot(wms.url, TEST_TOKEN, drop, name="wms-stock-1-oldest.csv.gz")
    middle = export_snapshot(wms.url, TEST_TOKEN, drop, name="wms-stock-2-middle.csv.gz")
    newest = export_snapshot(wms.url, TEST_TOKEN, drop, name="wms-stock-3-newest.csv.gz")
    rows = list(csv.reader(io.StringIO(gzip.decompress(newest.data.read_bytes()).decode())))
    rows[3][4] = "-5"  # a negative available: quantity_non_negative fails the run
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    newest.data.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
    write_manifest(newest.data, snapshot_id=newest.snapshot_id, snapshot_taken_at=newest.snapshot_taken_at,
                   orders_counted_until=newest.orders_counted_until, row_count=newest.rows)

    refused_run = run_nightly(dagbag)

    assert refused_run.state == DagRunState.FAILED
    assert task_states(refused_run)["validate_counts"] == "failed"
    assert stock_fingerprint(dsn) == fingerprint and active_freezes(dsn) == []
    rejected = drop / "rejected" / today()
    assert "quantity_non_negative" in (rejected / f"{newest.data.name}.reason.txt").read_text()
    assert oldest.data.exists() and middle.data.exists()  # a failed run supersedes nothing

    second = run_nightly(dagbag)

    assert second.state == DagRunState.SUCCESS
    run = get_run(store, second.run_id)
    assert run["status"] == "applied" and run["snapshot_id"] == middle.snapshot_id
    assert (drop / "processed" / today() / middle.data.name).exists()
    assert "superseded: the newer file wms-stock-2-middle.csv.gz" in \
        (rejected / f"{oldest.data.name}.reason.txt").read_text()
    assert sorted((d["data_file"], d["status"]) for d in file_drops_of_run(store, second.run_id)) == \
        [(oldest.data.name, "superseded"), (middle.data.name, "processed")]
