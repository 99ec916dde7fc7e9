"""The development MariaDB (devstack/local_mariadb.py) seen from another local user's side: it
listens on 127.0.0.1 only, lets nobody in without the generated password, keeps that password out
of every command line, and leaves nothing under its directory that group or others can read."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import pytest

from devstack.local_mariadb import BUFFER_POOL_SETTING, LocalMariaDB, LocalMariaDBError, buffer_pool_size
from devstack.local_pg import LOCAL_DIR, _free_port


@pytest.fixture(scope="module")
def server() -> Iterator[LocalMariaDB]:
    scratch = LOCAL_DIR / "scratch" / f"mariadb-{secrets.token_hex(4)}"
    db = LocalMariaDB(name="secrets", port=_free_port(), database="shop", local_dir=scratch)
    db.start()
    yield db
    db.stop()
    shutil.rmtree(scratch, ignore_errors=True)


def test_password_is_generated_private_and_required(server: LocalMariaDB) -> None:
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    assert len(server.password) >= 32
    args = server.connect_args()
    server.connect().close()
    for password in ("", "stocksync", server.password[:-1]):
        with pytest.raises(MySQLdb.OperationalError) as refused:
            MySQLdb.connect(**{**args, "password": password}).close()
        assert refused.value.args[0] == 1045  # ER_ACCESS_DENIED_ERROR


def test_listens_on_loopback_only_and_no_secret_in_command_lines(server: LocalMariaDB) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@bind_address, @@port")
        assert cur.fetchone() == ("127.0.0.1", server.port)
    conn.close()
    pid = server.running_pid()
    assert pid is not None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert server.password not in cmdline
    assert "--bind-address=127.0.0.1" in cmdline


def test_nothing_readable_by_group_or_others(server: LocalMariaDB) -> None:
    exposed = []
    for root, dirs, files in os.walk(server.base):
        for name in dirs + files:
            path = Path(root) / name
            if stat.S_ISSOCK(path.lstat().st_mode):
                continue  # the server's socket: its directory (asserted below) keeps everyone else out
            if stat.S_IMODE(path.lstat().st_mode) & 0o077:
                exposed.append((str(path), oct(stat.S_IMODE(path.lstat().st_mode))))
    assert exposed == []
    assert stat.S_IMODE(server.base.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.rundir.stat().st_mode) == 0o700


def test_buffer_pool_is_the_setting_checked_before_it_reaches_the_server(
        server: LocalMariaDB, monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers run with `STOCKSYNC_MARIADB_BUFFER_POOL` (256M unset, as this one); a value that
    is not a size in M or G is refused with the setting's name instead of reaching the command line."""
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@innodb_buffer_pool_size")
        assert cur.fetchone() == (256 * 1024 * 1024,)
    conn.close()
    monkeypatch.setenv(BUFFER_POOL_SETTING, "2G")
    assert buffer_pool_size() == "2G"
    for bad in ("2T", "0M", "256", "1G --skip-grant-tables", "-1G"):
        monkeypatch.setenv(BUFFER_POOL_SETTING, bad)
        with pytest.raises(LocalMariaDBError, match=BUFFER_POOL_SETTING):
            buffer_pool_size()
