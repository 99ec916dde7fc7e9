"""The file-drop WMS source around the pipeline (docs/file-drop-source.md): finding a
complete file in the drop folder, taking it for a run, staging it, and settling it afterwards.

A file is complete when its manifest (`<data file><manifest_suffix>`) is there: exporters write
the manifest last. A run takes the newest complete file (names sort by time); it claims it in
`stocksync.file_drops` (one run per file), reads the manifest, recognises a file already applied
(the same verified bytes, or the same snapshot id) and otherwise stages it through
`extract.extract_to_staging` like the HTTP source. After the run (a teardown, `settle`) the file
moves to `processed/<date>/` (applied, or a duplicate) or `rejected/<date>/` with a
`<name>.reason.txt` next to it (any permanent failure: a refused file, a failed validation or
guardrail); after a transient failure or a dry run it stays where it is for the next run. Older
complete files a processed file supersedes move to `rejected/<date>/` too: a snapshot older than
one applied is never applied.

Plain functions (no Airflow tasks): `file_tasks.py` wires them into the sync DAGs; the tests and
the benchmark call them directly. The file_drops rows that must survive a failed step (the claim,
the manifest, the refusal's reason) are written on their own connection, committed at once; the
verified checksum is committed with the staged rows.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from include.stocksync.config.files import FileSourceSettings
from include.stocksync.domain.errors import PermanentError, is_permanent
from include.stocksync.runs import lifecycle
from include.stocksync.runs import record as runs
from include.stocksync.runs.uow import transaction
from include.stocksync.shop.port import ShopPort
from include.stocksync.shop.registry import open_shop
from include.stocksync.store.db import connect, execute_file, query, run_key
from include.stocksync.sync import ports
from include.stocksync.sync.extract import ExtractResult, extract_to_staging
from include.stocksync.sync.shop_mirror import mirror_catalog
from include.stocksync.wms.sources.base import (
    SnapshotHeader,
    SnapshotLimits,
    WalkBounds,
    check_header,
    parse_timestamp,
)
from include.stocksync.wms.sources.file import FileRefused, FileSource, read_manifest

log = logging.getLogger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"
REASON_SUFFIX = ".reason.txt"


class FileClaimed(PermanentError):
    """Another run holds the file: one run per file (the two would apply it twice)."""


class FileGone(PermanentError):
    """The file the wait found is no longer in the drop folder (moved by hand, or by another run)."""


@dataclass(frozen=True)
class DropListing:
    """The drop folder's top level: complete files (data + manifest), and the halves without the other."""

    ready: list[tuple[str, str]]      # (data file, manifest), sorted by data file name
    orphan_data: list[str]            # data files without a manifest
    orphan_manifests: list[str]       # manifests without their data file


def drop_folder(location: str, conn_id: str | None = None) -> Any:
    """The drop folder as an `ObjectStoragePath` (file://, s3://, gs://, sftp://...), opened by
    what the Airflow layer handed down (sync/ports.py)."""
    return ports.open_folder(location.rstrip("/") + "/", conn_id)


def list_drops(folder: Any, *, file_glob: str, manifest_suffix: str) -> DropListing:
    """What is in the drop folder's top level (`processed/`, `rejected/`, hidden names and reason
    files are not candidates)."""
    names = set()
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):  # a prefix with no object yet: empty (the wait goes on)
        entries = []
    for entry in entries:
        name = entry.name
        if not name or name.startswith(".") or name.endswith(REASON_SUFFIX) or not entry.is_file():
            continue
        names.add(name)
    manifests = {name for name in names if name.endswith(manifest_suffix)}
    data = {name for name in names - manifests if fnmatchcase(name, file_glob)}
    return DropListing(
        ready=sorted((name, name + manifest_suffix) for name in data if name + manifest_suffix in manifests),
        orphan_data=sorted(name for name in data if name + manifest_suffix not in manifests),
        orphan_manifests=sorted(name for name in manifests if name[: -len(manifest_suffix)] not in names))


def find_ready(location: str, conn_id: str | None, file_glob: str, manifest_suffix: str) -> dict[str, Any] | None:
    """The newest complete file in the folder, as the sensor hands it to the extract task, or None."""
    listing = list_drops(drop_folder(location, conn_id), file_glob=file_glob, manifest_suffix=manifest_suffix)
    if not listing.ready:
        return None
    data_file, manifest_file = listing.ready[-1]
    return {"location": location, "data_file": data_file, "manifest_file": manifest_file,
            "older": [name for name, _ in listing.ready[:-1]]}


def find_ready_for(fs: FileSourceSettings) -> dict[str, Any] | None:
    return find_ready(fs.location, fs.conn_id, fs.file_glob, fs.manifest_suffix)


# ----------------------------------------------------------------------------- confinement
# The drop folder is written by another system: a name in it may be a symbolic link (or a hard
# link) to a file anywhere this worker can read, a folder in it (processed/, rejected/) a link to
# a folder anywhere it can write. On a local folder (file://) every file is opened relative to the
# folder's own descriptor with O_NOFOLLOW and judged on the opened descriptor (no check-then-use
# race), and files are moved and reason files written the same way. Object stores (s3://, gs://)
# have no links.

def local_folder(folder: Any) -> str | None:
    """The drop folder's path when it is on this machine's file system, else None."""
    return str(folder.path) if getattr(folder, "protocol", None) in ("file", "local") else None


def plain_name(name: str, what: str) -> str:
    """A name directly in the drop folder: no folder part, no `..`, nothing hidden, nothing a reader
    cannot see (a line break in a name forged lines in the reason file written beside a refused file)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or not name.isprintable():
        raise FileRefused(f"the {what} {name!r} is not a plain name in the drop folder (a folder part, '..', a "
                          "hidden name, or characters that do not print): stocksync only reads files directly in "
                          "file_source.location")
    return name


def _refuse_link(name: str, why: str) -> FileRefused:
    return FileRefused(f"{name} is {why}: stocksync reads only regular files that are in the drop folder "
                       "itself, never through a link (which may lead anywhere this worker can read). Have the "
                       "exporter write (or copy) the file into the folder")


def open_confined(directory: str, name: str) -> Any:
    """`name` in `directory`, opened for reading without following a link; FileRefused for a
    symbolic link, anything but a regular file, or a file with other names (a hard link)."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = os.open(plain_name(name, "file"), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse_link(name, "a symbolic link") from None
        raise
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse_link(name, "not a regular file")
        if info.st_nlink != 1:
            raise _refuse_link(name, f"a hard link (the file has {info.st_nlink} names, some outside the folder "
                                     "perhaps)")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


@dataclass(frozen=True)
class ConfinedFile:
    """A file directly in a local drop folder (what `FileSource` and `read_manifest` read)."""

    directory: str
    name: str

    def exists(self) -> bool:
        return os.path.lexists(os.path.join(self.directory, self.name))  # a link exists: it is refused

    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        return open_confined(self.directory, self.name)


def drop_file(folder: Any, name: str, what: str) -> Any:
    """The file `name` directly in the drop folder, read without following links where the store has them."""
    local = local_folder(folder)
    plain_name(name, what)
    return ConfinedFile(local, name) if local is not None else folder / name


def _subfolder(parent_fd: int, name: str, where: str) -> int:
    """The descriptor of folder `name` under `parent_fd`, created if missing, never through a link."""
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise FileRefused(f"{where}/{name} is a symbolic link or not a folder: stocksync moves files only into "
                              "real folders inside the drop folder; remove it") from None
        raise


def _move_out_local(directory: str, data_file: str, manifest_file: str | None, area: str, day: str, run_id: str,
                    reason_text: str | None) -> str:
    """`_move_out` on a local folder: renames (a link moves as the link) and the reason file,
    relative to folder descriptors opened without following links. Returns the data file's new name."""
    plain_name(data_file, "file")
    if manifest_file:
        plain_name(manifest_file, "manifest")
    fds = [os.open(directory, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        fds.append(_subfolder(fds[0], area, directory))
        fds.append(_subfolder(fds[1], day, f"{directory}/{area}"))
        top, target = fds[0], fds[2]
        prefix = f"{run_key(run_id)}-" if _lexists(target, data_file) else ""
        for name in (data_file, manifest_file):
            if name and _lexists(top, name):
                os.rename(name, f"{prefix}{name}", src_dir_fd=top, dst_dir_fd=target)
        if reason_text is not None:
            reason_name = f"{prefix}{data_file}{REASON_SUFFIX}"
            if _lexists(target, reason_name):
                os.unlink(reason_name, dir_fd=target)  # the name only: never write through a link
            fd = os.open(reason_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=target)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(reason_text)
    finally:
        for fd in fds:
            os.close(fd)
    return f"{prefix}{data_file}"


def _lexists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


# ----------------------------------------------------------------------------- moving files

def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _move_out(folder: Any, data_file: str, manifest_file: str | None, area: str, run_id: str,
              reason: str | None, header: dict[str, Any]) -> str:
    """Move a data file (and its manifest) to `<area>/<date>/`, with a reason file when there is a
    reason. A name already there on that day gets the run's key in front. Returns the new URL."""
    reason_text = None
    if reason:
        lines = [f"stocksync did not apply this file ({header.get('outcome', area)}).", ""]
        lines += [f"{key + ':':<10} {value}" for key, value in header.items() if key != "outcome"]
        lines += [f"{'reason:':<10} {reason}", "",
                  f"To take it again: fix the cause, then move {data_file} and its manifest back to {folder}."]
        reason_text = "\n".join(lines) + "\n"
    local = local_folder(folder)
    if local is not None:
        day = _today()
        return str(folder / area / day / _move_out_local(local, data_file, manifest_file, area, day, run_id,
                                                         reason_text))
    target_dir = folder / area / _today()
    target_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"{run_key(run_id)}-" if (target_dir / data_file).exists() else ""
    source = folder / data_file
    target = target_dir / f"{prefix}{data_file}"
    if source.exists():
        source.move(target)
    if manifest_file and (folder / manifest_file).exists():
        (folder / manifest_file).move(target_dir / f"{prefix}{manifest_file}")
    if reason_text is not None:
        (target_dir / f"{prefix}{data_file}{REASON_SUFFIX}").write_text(reason_text)
    return str(target)


def _reason_header(run_id: str, dag_id: str, data_file: str, manifest_file: str | None,
                   outcome: str) -> dict[str, Any]:
    return {"outcome": outcome, "file": data_file, "manifest": manifest_file or "(none)",
            "run": f"{run_id} (DAG {dag_id})", "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _record(dsn: str | None, statement: str, params: dict[str, Any]) -> None:
    """A file_drops write on its own connection, committed at once (it must outlive the step)."""
    if dsn is None:
        return
    with transaction(dsn) as conn:
        execute_file(conn, f"file_drop/{statement}", params)


# ----------------------------------------------------------------------------- the wait's deadline

def refuse_at_deadline(dsn: str | None, fs: FileSourceSettings, *, run_id: str, dag_id: str,
                       waited_seconds: float) -> str:
    """No complete file by the deadline: halves of files (a data file without its manifest, a
    manifest without its data file) are refused to `rejected/<date>/`; returns the run's error."""
    folder = drop_folder(fs.location, fs.conn_id)
    listing = list_drops(folder, file_glob=fs.file_glob, manifest_suffix=fs.manifest_suffix)
    refused = []
    for data_file in listing.orphan_data:
        reason = (f"no manifest: {data_file} had no {data_file}{fs.manifest_suffix} when the wait ended "
                  f"({waited_seconds:.0f} s after the run started, config file_source.wait_deadline_seconds): "
                  "the export is incomplete or the exporter writes no manifest, so stocksync cannot know the "
                  "file is whole")
        refused.append((data_file, None, reason))
    for manifest_file in listing.orphan_manifests:
        data_file = manifest_file[: -len(fs.manifest_suffix)]
        reason = f"no data file: manifest {manifest_file} describes {data_file}, which is not in the folder"
        refused.append((data_file, manifest_file, reason))
    for data_file, manifest_file, reason in refused:
        moved_name = manifest_file or data_file  # a manifest without its data file moves alone
        header = _reason_header(run_id, dag_id, data_file, manifest_file, "rejected")
        moved = _move_out(folder, moved_name, None, REJECTED, run_id, reason, header)
        try:
            _record(dsn, "insert_file_drop_settled", {
                "run_id": run_id, "dag_id": dag_id, "location": fs.location, "data_file": data_file,
                "manifest_file": manifest_file, "status": "rejected", "reason": reason, "moved_to": moved})
        except Exception:  # the refusal and its alert stand without the record
            log.exception("could not record the refusal of %s", moved_name)
    if refused:
        return "refused: " + "; ".join(reason for _, _, reason in refused) + \
            f"; moved to {folder / REJECTED / _today()} (nothing was frozen or changed)"
    return (f"no WMS stock file arrived in {fs.location} within {waited_seconds:.0f} s of the run's start (config "
            "file_source.wait_deadline_seconds): a complete file is a data file and its manifest "
            f"(<name>{fs.manifest_suffix}); nothing was frozen or changed")


# ----------------------------------------------------------------------------- extract

def extract_file(dsn: str, *, run_id: str, dag_id: str, found: dict[str, Any],
                 shop: ShopPort | None = None) -> ExtractResult:
    """The extract step on a dropped file (the HTTP source's is `pipeline.extract`). `found` is
    what the wait handed over (`find_ready`). A file already applied ends the run as `duplicate`.
    `shop`: the shop port (none: the reference shop in stocksync's database)."""
    run = runs.get_run(dsn, run_id)
    if runs.is_finished(run):
        log.info("run %s is %s: keeping its extract (snapshot %s)", run_id, run["status"], run["snapshot_id"])
        return ExtractResult(run["staging_table"], run["snapshot_id"], run["snapshot_taken_at"],
                             run["orders_counted_until"], run["request_started_at"], run["pages"] or 0,
                             run["extracted"] or 0, 0.0)
    settings = runs.spec_of(run).settings
    fs = settings.file_source
    location = str(found.get("location") or fs.location)
    folder = drop_folder(location, fs.conn_id)
    data_file, manifest_file = str(found["data_file"]), str(found["manifest_file"])
    drop_id = None
    with lifecycle.step(dsn, run_id, "extract") as conn:
        try:
            plain_name(data_file, "data file")  # before the claim: a name outside the folder is never taken
            plain_name(manifest_file, "manifest")
            drop_id = claim(dsn, run_id=run_id, dag_id=dag_id, location=location, data_file=data_file,
                            manifest_file=manifest_file)
            data = drop_file(folder, data_file, "data file")
            manifest_path = drop_file(folder, manifest_file, "manifest")
            if not data.exists() or not manifest_path.exists():
                raise FileGone(f"{data_file} or its manifest is no longer in {location}: moved since the wait "
                               "found it (by hand, or by another run)")
            manifest = read_manifest(manifest_path, data_file=data_file)
            _record(dsn, "update_file_drop_manifest", {
                "drop_id": drop_id, "manifest": manifest.as_json(),
                "snapshot_id": manifest.snapshot_id if isinstance(manifest.snapshot_id, str) else None,
                "sha256": manifest.sha256, "row_count": manifest.row_count})
            earlier = execute_file(conn, "file_drop/select_file_duplicate", {
                "run_id": run_id, "sha256": manifest.sha256,
                "snapshot_id": manifest.snapshot_id if isinstance(manifest.snapshot_id, str) else None}).fetchone()
            limits = SnapshotLimits(timedelta(seconds=settings.clock_skew_seconds),
                                    timedelta(seconds=settings.max_snapshot_age_seconds),
                                    settings.snapshot_page_times)
            if earlier is not None:
                return _duplicate(conn, run_id, drop_id, manifest, earlier, limits)
            started = time.monotonic()
            # the run's copy of the shop's catalog (shop_mirror.py): the walk is bounded by its size
            mirror = mirror_catalog(conn, shop if shop is not None else open_shop(dsn), run_id)
            enabled = conn.execute(sql.SQL("SELECT count(*) FROM ({}) enabled").format(
                mirror.enabled_skus())).fetchone()
            bounds = WalkBounds.for_catalog(int(enabled[0]) if enabled else 0, fs.chunk_rows,
                                            margin=settings.walk_page_margin, extra=settings.walk_extra_pages,
                                            seconds=settings.extract_deadline_seconds,
                                            max_batch_bytes=settings.max_page_bytes)
            source = FileSource(data, manifest, fs)
            result = extract_to_staging(conn, source, run_id, bounds=bounds, limits=limits)
            # the file's "request" is its export: orders after the snapshot was taken are not in it,
            # so the request_time watermark is the snapshot's time, never our later read
            if result.snapshot_taken_at is not None and result.snapshot_taken_at < result.request_started_at:
                result = replace(result, request_started_at=result.snapshot_taken_at)
            runs.record_extract(conn, run_id, result)
            execute_file(conn, "file_drop/update_file_drop_read", {
                "drop_id": drop_id, "bytes": source.stats.bytes, "rows_read": source.stats.rows})
            log.info("file %s: %s in %.2fs", data_file, source.stats.as_dict(), time.monotonic() - started)
            return result
        except BaseException as exc:
            if drop_id is not None and is_permanent(exc):
                try:
                    _record(dsn, "update_file_drop_reason", {"drop_id": drop_id, "reason": str(exc)[:4000]})
                except Exception:
                    log.exception("could not record why %s was refused", data_file)
            raise


def claim(dsn: str, *, run_id: str, dag_id: str, location: str, data_file: str, manifest_file: str) -> int:
    """Take the file for this run (a retry keeps its claim); refused while another live run holds it."""
    with transaction(dsn) as conn:
        execute_file(conn, "file_drop/update_file_drops_release_stale",
                     {"run_id": run_id, "location": location, "data_file": data_file})
        row = execute_file(conn, "file_drop/upsert_file_drop_claim", {
            "run_id": run_id, "dag_id": dag_id, "location": location, "data_file": data_file,
            "manifest_file": manifest_file}).fetchone()
        holder = None if row else execute_file(conn, "file_drop/select_file_drop_holder",
                                               {"location": location, "data_file": data_file}).fetchone()
    if row is None:
        raise FileClaimed(f"{data_file} in {location} is taken by run {holder[0] if holder else '?'} of DAG "
                          f"{holder[1] if holder else '?'}: one run per file")
    return int(row[0])


def _duplicate(conn: Any, run_id: str, drop_id: int, manifest: Any, earlier: tuple[str, str],
               limits: SnapshotLimits) -> ExtractResult:
    """The file's bytes or snapshot were applied by an earlier run: this run is a duplicate. Its
    manifest's times are recorded, so they get the header's checks first (a file refused for them
    is refused like any other), all but the age: a file dropped again days later is still the
    duplicate it is."""
    check_header(SnapshotHeader(manifest.snapshot_id, manifest.snapshot_taken_at, manifest.orders_counted_until),
                 replace(limits, max_age=timedelta.max))
    earlier_run, matched = earlier
    what = "the same bytes (SHA-256 " + manifest.sha256 + ")" if matched == "checksum" else \
        f"the same snapshot id {manifest.snapshot_id!r}"
    reason = f"duplicate: run {earlier_run} already applied {what}; nothing was applied again"
    now = datetime.now(timezone.utc)
    taken = parse_timestamp(manifest.snapshot_taken_at, "snapshot_taken_at")
    counted = parse_timestamp(manifest.orders_counted_until, "orders_counted_until")
    snapshot_id = manifest.snapshot_id if isinstance(manifest.snapshot_id, str) else None
    runs.record_file_duplicate(conn, run_id, snapshot_id=snapshot_id, snapshot_taken_at=taken,
                               orders_counted_until=counted, request_started_at=now,
                               details={"duplicate_of": earlier_run, "matched": matched,
                                        "file": manifest.data_file, "sha256": manifest.sha256})
    execute_file(conn, "file_drop/update_file_drop_duplicate_of",
                 {"drop_id": drop_id, "duplicate_of": earlier_run, "reason": reason})
    log.warning("run %s: %s", run_id, reason)
    return ExtractResult("", snapshot_id or "", taken, counted, now, 0, 0, 0.0)


# ----------------------------------------------------------------------------- settle

def settle(dsn: str, *, run_id: str, dag_id: str) -> dict[str, Any]:
    """After the run: move the file it took where its outcome says, record where and why. Safe to
    call again (a settled file is no longer this run's claim)."""
    with transaction(dsn) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            drop = cur.execute(query("file_drop/select_file_drop_of_run"), {"run_id": run_id}).fetchone()
        if drop is None:
            return {"settled": None, "reason": "this run holds no file"}
        run = runs.read_run(conn, run_id)
    fs = runs.spec_of(run).settings.file_source
    folder = drop_folder(drop["location"], fs.conn_id)
    status = run["status"]
    reason: str | None
    if status == "applied":
        outcome, area, reason = "processed", PROCESSED, None
    elif status == "duplicate":
        outcome, area = "duplicate", PROCESSED
        reason = drop["reason"] or f"duplicate of run {drop['duplicate_of']}"
    elif status == "failed" and (drop["reason"] or _failed_permanently(run)):
        outcome, area = "rejected", REJECTED
        reason = drop["reason"] or str(run.get("first_error") or run.get("error") or "the run failed")
    else:
        outcome, area = "released", None
        reason = {"dry_run": "dry run: the file stays for a real run"}.get(
            status, f"the run ended {status} without a permanent failure (e.g. a database or store outage): "
                    "the file stays for the next run")
    moved_to = None
    if area is not None:
        header = _reason_header(run_id, dag_id, drop["data_file"], drop["manifest_file"], outcome)
        moved_to = _move_out(folder, drop["data_file"], drop["manifest_file"], area, run_id, reason, header)
    with transaction(dsn) as conn:
        execute_file(conn, "file_drop/update_file_drop_settled", {
            "drop_id": drop["drop_id"], "status": outcome, "moved_to": moved_to, "reason": reason})
    superseded = _supersede_older(dsn, folder, fs, run_id, dag_id, drop) if area == PROCESSED else []
    log.info("run %s: %s %s%s", run_id, outcome, drop["data_file"], f" -> {moved_to}" if moved_to else "")
    return {"settled": outcome, "data_file": drop["data_file"], "moved_to": moved_to, "reason": reason,
            "superseded": superseded}


def _failed_permanently(run: dict[str, Any]) -> bool:
    attempts = run.get("attempts") or []
    last = attempts[-1] if isinstance(attempts, list) and attempts else None
    return isinstance(last, dict) and last.get("kind") == "permanent"


def _supersede_older(dsn: str, folder: Any, fs: FileSourceSettings, run_id: str, dag_id: str,
                     drop: dict[str, Any]) -> list[str]:
    """Complete files older (by name) than the one just processed are never applied after it."""
    listing = list_drops(folder, file_glob=fs.file_glob, manifest_suffix=fs.manifest_suffix)
    moved = []
    for data_file, manifest_file in listing.ready:
        if data_file >= drop["data_file"]:
            continue
        reason = (f"superseded: the newer file {drop['data_file']} (snapshot {drop['snapshot_id']}) was taken by run "
                  f"{run_id}; an older snapshot is never applied after a newer one")
        target = _move_out(folder, data_file, manifest_file, REJECTED, run_id, reason,
                           _reason_header(run_id, dag_id, data_file, manifest_file, "superseded"))
        _record(dsn, "insert_file_drop_settled", {
            "run_id": run_id, "dag_id": dag_id, "location": drop["location"], "data_file": data_file,
            "manifest_file": manifest_file, "status": "superseded", "reason": reason, "moved_to": target})
        moved.append(data_file)
    return moved


def file_drops_of_run(dsn: str, run_id: str) -> list[dict[str, Any]]:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query("file_drop/select_file_drops_of_run"), {"run_id": run_id}).fetchall()
