"""Secrets of the local stack, generated on this machine and kept private under `.local/`.

A password or token written into the repository is the same on every clone, so anyone who can
reach 127.0.0.1 on a shared machine (another user, a container, a browser page posting to
localhost) could use it. Each secret here is therefore random, made once per checkout, stored in
`.local/secrets/` (directory 0700, files 0600) and reused on later starts, so a running stack and
a restarted one agree.

`.local/` holds more than secrets: the alert log, Airflow's metadata DB and logs, pid files,
PostgreSQL's clusters. Nothing in it is meant for other users, so the processes we start run with
umask 077 (`PRIVATE_UMASK`) and `tighten()` takes group/other bits off whatever an older version
left there. One exception: when we are root, PostgreSQL runs as the `postgres` user and must walk
through `.local/` and `.local/pg/` to its cluster; those two directories are group `postgres`
with traverse-only access (0710), which lets it reach files by name without listing or reading
anything else.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from include.stocksync.config.settings import PROJECT_ROOT

LOCAL_DIR = PROJECT_ROOT / ".local"
PRIVATE_UMASK = 0o077
SECRET_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
TRAVERSE_ONLY_DIR_MODE = 0o710  # owner rwx, group may only pass through


def secrets_dir(local_dir: Path = LOCAL_DIR) -> Path:
    return local_dir / "secrets"


def make_private_dir(path: Path, mode: int | None = None) -> Path:
    """Create `path` (missing parents too, all 0700) and take group/other access off it.

    Modes are set after creation because `mkdir` applies the umask of whoever runs us. Without
    `mode`, an existing traverse-only directory (0710) stays so, or PostgreSQL would lose its way
    to its cluster; with `mode`, that exact mode is set.
    """
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            pass
        os.chmod(directory, PRIVATE_DIR_MODE)
    current = stat.S_IMODE(path.stat().st_mode)
    if mode is not None:
        if current != mode:
            os.chmod(path, mode)
    elif current & 0o077 not in (0, 0o010):
        os.chmod(path, current & ~0o077)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, readable by the owner only from the first byte on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_private_log(path: Path) -> int:
    """An append-only descriptor on `path` (mode 0600, also when the file existed before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, SECRET_MODE)
    os.fchmod(fd, SECRET_MODE)
    return fd


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret stored at `path`; the first caller generates it (`nbytes` random bytes, URL-safe).

    Created with `link()` from a private temporary file so that two processes starting at the
    same moment end up with the same value (the second one reads the first one's file).
    """
    while True:
        try:
            value = path.read_text().strip()
        except FileNotFoundError:
            value = None
        if value:
            if stat.S_IMODE(path.stat().st_mode) != SECRET_MODE:
                os.chmod(path, SECRET_MODE)
            return value
        if value is not None:  # an empty file (a crash mid-write elsewhere): make a new secret
            path.unlink(missing_ok=True)
        make_private_dir(path.parent)
        value = secrets.token_urlsafe(nbytes)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_MODE)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(value + "\n")
            try:
                os.link(tmp, path)
                return value
            except FileExistsError:
                continue  # someone else was first: use theirs
        finally:
            tmp.unlink(missing_ok=True)


def airflow_jwt_secret(local_dir: Path = LOCAL_DIR) -> str:
    """The key the local Airflow signs its API tokens with (64 random bytes).

    Anyone who knows it can mint an admin token for the local Airflow, so it must not be a
    constant; it is stable across restarts so that logins survive them.
    """
    return read_or_create_secret(secrets_dir(local_dir) / "airflow-jwt-secret", 64)


def wms_token_file(local_dir: Path = LOCAL_DIR) -> Path:
    """Where the local WMS service's bearer token lives (created on first use)."""
    path = secrets_dir(local_dir) / "wms-token"
    read_or_create_secret(path, 32)
    return path


def wms_token(local_dir: Path = LOCAL_DIR) -> str:
    return read_or_create_secret(wms_token_file(local_dir), 32)


def pg_password_file(name: str, local_dir: Path = LOCAL_DIR) -> Path:
    return secrets_dir(local_dir) / f"pg-{name}-password"


def pg_password(name: str, local_dir: Path = LOCAL_DIR) -> str:
    """The password of the `postgres` role of the local cluster `name`."""
    return read_or_create_secret(pg_password_file(name, local_dir), 32)


def tighten(root: Path = LOCAL_DIR) -> list[Path]:
    """Remove group/other access from everything under `root` (itself included); returns what changed.

    Kept as they are: traverse-only directories (0710, see the module docstring), symlinks, and
    the inside of PostgreSQL data directories (the server keeps them 0700/0600 itself and refuses
    to start otherwise).
    """
    changed: list[Path] = []
    if not root.exists():
        return changed

    def fix(path: Path) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode) or not mode & 0o077:
            return
        if stat.S_ISDIR(st.st_mode) and mode & 0o077 == 0o010:
            return
        try:
            os.chmod(path, mode & ~0o077)
        except FileNotFoundError:
            return
        changed.append(path)

    fix(root)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if (here / "PG_VERSION").exists():
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            fix(here / name)
    return changed
